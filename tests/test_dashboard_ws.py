"""The dashboard's websockets: the browser's session cookie on the job streams (real Redis layer)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from exports import jobs, lifecycle, live
from hypersdk.asgi import application

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_connections_of_the_sync_thread"),
]

ORIGIN = b"http://localhost:8080"


@pytest.fixture
def session_cookie(operator_browser) -> bytes:
    """The cookie a logged-in browser sends with its websocket handshake."""
    return f"sessionid={operator_browser.cookies['sessionid'].value}".encode()


def browser_socket(path: str, cookie: bytes | None) -> WebsocketCommunicator:
    headers = [(b"origin", ORIGIN), (b"host", b"localhost:8080")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.mark.asyncio
async def test_a_browser_without_a_session_is_refused(redis_url):
    connected, code = await browser_socket("/ws/jobs/", None).connect()
    assert not connected and code == 4401


@pytest.mark.asyncio
async def test_a_stale_session_cookie_is_refused(redis_url):
    connected, code = await browser_socket("/ws/jobs/", b"sessionid=not-a-session").connect()
    assert not connected and code == 4401


@pytest.mark.asyncio
async def test_a_logged_in_browser_follows_a_job_as_the_live_panel_expects(redis_url, session_cookie):
    job_id = (
        await sync_to_async(jobs.submit_jobs)([{"vm_path": "/dc/vm/prod/web01"}], origin="dashboard")
    ).job_ids[0]
    socket = browser_socket(f"/ws/jobs/{job_id}/", session_cookie)
    connected, _ = await socket.connect()
    assert connected
    snapshot = await socket.receive_json_from(timeout=10)
    # live.js reads these fields of the snapshot
    assert snapshot["type"] == "job.snapshot"
    assert snapshot["data"]["status"] == "pending" and "percent" in snapshot["data"]["progress"]
    await sync_to_async(live.publish_job)(job_id, "job.progress", {"percent": 64.0, "phase": "downloading"})
    await sync_to_async(lifecycle.append_log)(job_id, "disk 1 of 2 downloaded")
    await sync_to_async(jobs.cancel_job)(job_id)
    received = [await socket.receive_json_from(timeout=10) for _ in range(4)]
    assert [m["type"] for m in received] == ["job.progress", "job.log", "job.log", "job.status"]
    assert received[0]["data"]["percent"] == 64.0
    assert received[1]["data"]["message"] == "disk 1 of 2 downloaded"
    assert received[3]["data"]["status"] == "cancelled"
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_logged_in_browser_hears_every_job_s_status_changes(redis_url, session_cookie):
    socket = browser_socket("/ws/jobs/", session_cookie)
    connected, _ = await socket.connect()
    assert connected
    job_id = (await sync_to_async(jobs.submit_jobs)([{"vm_path": "/dc/vm/prod/web01"}])).job_ids[0]
    await sync_to_async(jobs.cancel_job)(job_id)
    message = await socket.receive_json_from(timeout=10)
    assert message["type"] == "job.status" and message["job_id"] == job_id
    assert message["data"]["status"] == "cancelled"
    await socket.disconnect()
