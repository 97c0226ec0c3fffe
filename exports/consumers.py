"""Live job updates over websockets: ``/ws/jobs/<id>/`` streams one job, ``/ws/jobs/`` all
status changes. Messages are the publisher's ``{"type", "job_id", "data"}``; the first one on
a job stream is a ``job.snapshot`` of the job as the API shows it."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from api_tokens.ws_auth import (
    FORBIDDEN,
    UNAUTHORIZED,
    recheck_access,
    session_key_of,
    user_group,
    watch_access,
)
from exports.live import JOBS_GROUP, job_group

NOT_FOUND = 4404


@database_sync_to_async
def _may_watch(user) -> bool:
    from hypersdk.lib.permissions import can_view

    return can_view(user)


@database_sync_to_async
def _snapshot(job_id: str) -> dict | None:
    from exports.api.serializers import JobSerializer
    from exports.models import Job

    job = Job.objects.select_related("vcenter").filter(id=job_id).first()
    return JobSerializer(job).data if job else None


class JobStreamConsumer(AsyncJsonWebsocketConsumer):
    group = ""
    user_group = ""
    access_watch: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHORIZED)
            return
        if not await _may_watch(user):  # viewers and operators watch; an account without a role not
            await self.close(code=FORBIDDEN)
            return
        job_id = self.scope["url_route"]["kwargs"].get("job_id")
        snapshot = None
        if job_id:
            snapshot = await _snapshot(job_id)
            if snapshot is None:
                await self.close(code=NOT_FOUND)
                return
        self.group = job_group(job_id) if job_id else JOBS_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        # Revocations reach the user's group at once; the periodic re-check is the safety net.
        self.user_group = user_group(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()
        self.access_watch = asyncio.create_task(watch_access(self, _may_watch))
        if snapshot is not None:
            await self.send_json({"type": "job.snapshot", "job_id": job_id, "data": snapshot})

    async def disconnect(self, code: int) -> None:
        if self.access_watch is not None:
            self.access_watch.cancel()
        for group in (self.group, self.user_group):
            if group:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def hypersdk_message(self, event: dict) -> None:
        await self.send_json(event["message"])

    async def hypersdk_revoked(self, event: dict) -> None:
        """Its user lost something (logout, token, role, active): check this socket now."""
        if event.get("session_key") and event["session_key"] == session_key_of(self.scope):
            await self.close(code=UNAUTHORIZED)  # this very session logged out
            return
        await recheck_access(self, _may_watch)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        """The stream only speaks: what a client sends is ignored, never parsed (a 100,000-deep
        ``[[[`` would otherwise end the socket with a RecursionError)."""
