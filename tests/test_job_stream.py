"""The websocket stream of a job, with Channels' WebsocketCommunicator over the real Redis layer."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from api_tokens.service import issue_token
from exports import jobs, lifecycle, live
from hypersdk.asgi import application

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_connections_of_the_sync_thread"),
]


@pytest.fixture
def token(viewer) -> str:
    return issue_token(viewer)


def connect(path: str, token: str | None = None, origin: bytes | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", origin)] if origin else []
    query = f"?token={token}" if token else ""
    return WebsocketCommunicator(application, f"{path}{query}", headers=headers)


@pytest.mark.asyncio
async def test_stream_needs_a_token(redis_url):
    communicator = connect("/ws/jobs/")
    connected, code = await communicator.connect()
    assert not connected and code == 4401


@pytest.mark.asyncio
async def test_a_job_stream_starts_with_a_snapshot_then_relays_progress_and_logs(redis_url, token):
    job_id = (await sync_to_async(jobs.submit_jobs)([{"vm_path": "/dc/vm/prod/web01"}])).job_ids[0]
    communicator = connect(f"/ws/jobs/{job_id}/", token)
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from(timeout=10)
    assert snapshot["type"] == "job.snapshot" and snapshot["data"]["status"] == "pending"
    await sync_to_async(live.publish_job)(job_id, "job.progress", {"percent": 42.0, "phase": "downloading"})
    await sync_to_async(lifecycle.append_log)(job_id, "hello")
    progress = await communicator.receive_json_from(timeout=10)
    assert progress == {
        "type": "job.progress",
        "job_id": job_id,
        "data": {"percent": 42.0, "phase": "downloading"},
    }
    log = await communicator.receive_json_from(timeout=10)
    assert log["type"] == "job.log" and log["data"]["message"] == "hello"
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_unknown_job_is_refused(redis_url, token):
    connected, code = await connect("/ws/jobs/job-nosuchjob/", token).connect()
    assert not connected and code == 4404


@pytest.mark.asyncio
async def test_a_foreign_origin_is_refused(redis_url, token):
    connected, _ = await connect("/ws/jobs/", token, origin=b"https://evil.example").connect()
    assert not connected
