"""Workers claiming jobs at the same moment, each in its own thread and database connection."""

from __future__ import annotations

import threading

from django.db import close_old_connections, connection

from exports import job_queue


def claim_at_once(job_ids: list[str]) -> tuple[list[str], list[BaseException]]:
    """Claims each of ``job_ids`` from a thread of its own (worker ``w-<id>``), all released
    together by a barrier; returns the ids whose claim started a job and what the claims raised."""
    start = threading.Barrier(len(job_ids))
    claimed: list[str] = []
    errors: list[BaseException] = []

    def claim(job_id: str) -> None:
        close_old_connections()
        try:
            start.wait()
            if job_queue.claim_job(job_id, f"w-{job_id}") is not None:
                claimed.append(job_id)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claimed, errors
