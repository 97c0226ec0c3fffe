"""The Channels layer as configured: idle websockets stay open on the real Redis (embedded, or
$REDIS_URL when the suite runs against a Redis server)."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from exports import jobs
from hypersdk.asgi import application
from tests.factories import browser

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_connections_of_the_sync_thread"),
]


@pytest.fixture
def session_cookie(viewer) -> bytes:
    return f"sessionid={browser(viewer).cookies['sessionid'].value}".encode()


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
