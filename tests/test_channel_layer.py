"""The Channels layer as configured: idle websockets stay open on the real Redis (embedded, or
$REDIS_URL when the suite runs against a Redis server)."""

from __future__ import annotations

import logging

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from exports import jobs
from hypersdk.asgi import application
from hypersdk.lib.permissions import grant_role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest_asyncio.fixture(autouse=True)
async def close_connections_of_the_sync_thread():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def session_cookie(django_user_model) -> bytes:
    user = django_user_model.objects.create_user("watcher", password="watcher-pass")
    grant_role(user, "viewer")
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.asyncio
async def test_an_idle_websocket_stays_open_and_receives_the_next_event(redis_url, session_cookie, caplog):
    # The consumer waits for its next message with a blocking Redis read that the server ends
    # after `brpop_timeout` seconds; staying idle past one such read is what used to kill it.
    idle_seconds = get_channel_layer().brpop_timeout + 1
    headers = [
        (b"origin", b"http://localhost:8080"),
        (b"host", b"localhost:8080"),
        (b"cookie", session_cookie),
    ]
    socket = WebsocketCommunicator(application, "/ws/jobs/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    job_id = (await sync_to_async(jobs.submit_jobs)([{"vm_path": "/dc/vm/prod/web01"}])).job_ids[0]
    caplog.set_level(logging.WARNING)

    assert await socket.receive_nothing(timeout=idle_seconds, interval=0.5)
    await sync_to_async(jobs.cancel_job)(job_id)
    event = await socket.receive_json_from(timeout=10)

    assert (event["type"], event["job_id"], event["data"]["status"]) == ("job.status", job_id, "cancelled")
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    await socket.disconnect()
