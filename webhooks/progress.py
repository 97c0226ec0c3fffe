"""Throttle ``job.progress`` for webhooks: a chatty export must not flood a receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ProgressThrottle:
    """Let through a job's first progress event, each new 10 % step, and otherwise at most one
    every ``interval`` seconds. State lives in the process that runs the job (its worker)."""

    def __init__(
        self, interval: float, clock: Callable[[], float] = time.monotonic, limit: int = 10_000
    ) -> None:
        self.interval, self.clock, self.limit = interval, clock, limit
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def allow(self, job_id: str, percent: float) -> bool:
        now, step = self.clock(), int(max(0.0, min(100.0, percent)) // 10)
        with self._lock:
            last = self._last.get(job_id)
            if last is not None and step <= last[1] and now - last[0] < self.interval:
                return False
            if len(self._last) >= self.limit:  # jobs that never said they finished
                self._last.clear()
            self._last[job_id] = (now, max(step, last[1] if last else step))
            return True

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._last.pop(job_id, None)
