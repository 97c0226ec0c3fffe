"""Handing deliveries to the Celery workers: one task per delivery (a retry's countdown), or a
drainer started in a free Redis slot (at most ``HYPERSDK_WEBHOOK_DRAINERS`` at once).

If the broker or Redis is down the rows stay pending and the periodic sweep sends them.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from django.conf import settings

from webhooks import conf

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)
# Sent by name (webhooks/tasks.py defines them; CELERY_TASK_ROUTES queues them).
DELIVER_TASK = "webhooks.tasks.deliver_webhook"
DRAIN_TASK = "webhooks.tasks.drain_webhook_deliveries"
SLOT_TTL = 300  # a drainer that died frees its slot after this many seconds


def _celery_app():
    """Our Celery app, imported at the first task sent: every process that loads the apps
    subscribes to events (so imports this module), few of them send a delivery."""
    from hypersdk.celery import app

    return app


def enqueue(delivery_ids: list[str], countdown: float = 0) -> None:
    """Hand deliveries to the workers; if the broker is down, the sweep sends them later."""
    celery_app = _celery_app()
    for delivery_id in delivery_ids:
        try:
            celery_app.send_task(DELIVER_TASK, (delivery_id,), countdown=countdown or None)
        except Exception as exc:  # noqa: BLE001 - the row stays pending: the sweep resends it
            logger.warning("cannot enqueue webhook delivery %s (broker down?): %s", delivery_id, exc)
            return


def kick() -> None:
    """Make sure a drainer will see every delivery committed so far; start one if a slot is free."""
    try:
        client = redis_client()
        for slot in range(conf.drainers()):
            if client.set(slot_key(slot), "1", nx=True, ex=SLOT_TTL):
                _celery_app().send_task(DRAIN_TASK, (slot,))
                return
    except Exception as exc:  # noqa: BLE001 - the rows stay pending: the sweep sends them
        logger.warning("cannot start a webhook drainer (Redis down?): %s", exc)


def slot_key(slot: int) -> str:
    """Per database: daemons (or test sessions) sharing a Redis keep their drainers apart."""
    return f"hypersdk:webhooks:{settings.DATABASES['default']['NAME']}:drainer:{slot}"


_redis_clients: dict[tuple[int, str], redis.Redis] = {}


def redis_client() -> redis.Redis:
    """One client per process and Redis URL (a forked worker must not share its parent's)."""
    import redis  # here: a CLI process that loads the apps but sends no delivery skips it

    key = (os.getpid(), settings.REDIS_URL)
    if key not in _redis_clients:
        _redis_clients[key] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5
        )
    return _redis_clients[key]
