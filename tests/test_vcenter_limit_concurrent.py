"""The per-vCenter limit under concurrent claims: workers claiming at the same moment, each in
its own thread and database connection, never start more jobs on one vCenter than the limit.

On PostgreSQL claims on one vCenter are serialised by an advisory lock (SQLite serialises all
writing transactions); this is where that lock is proved, so it matters most in the PostgreSQL
pass (`make test` runs it on both).
"""

from __future__ import annotations

import threading

import pytest

from exports import job_queue
from exports.models import Job, VCenter
from tests.concurrent_claims import claim_at_once
from tests.conftest import APP01

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 2
CLAIMANTS = 6


class ClaimProbe:
    """Wraps the step of a claim right after it counted the vCenter's running jobs: there it
    waits (at most ``patience`` seconds) for a second claim of the same vCenter to arrive.

    With the vCenter serialised none can arrive, so the wait only costs time; without, every
    claim counts the same running jobs before any of them updates, and all start."""

    def __init__(self, original, patience: float = 1.0) -> None:
        self.original, self.patience = original, patience
        self.inside = 0
        self.most_inside = 0
        self.changed = threading.Condition()

    def __call__(self) -> None:
        with self.changed:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.inside > 1, timeout=self.patience)
        try:
            self.original()
        finally:
            with self.changed:
                self.inside -= 1


@pytest.fixture
def pending_on_one_vcenter(export_root, settings) -> list[str]:
    settings.HYPERSDK_MAX_CONCURRENT_EXPORTS = LIMIT
    vcenter = VCenter.objects.create(name="busy", url="busy.example", username="u")
    return [
        Job.objects.create(vm_path=APP01, output_path=str(export_root / f"app01-{n}"), vcenter=vcenter).id
        for n in range(CLAIMANTS)
    ]


def test_concurrent_claims_start_no_more_than_the_vcenters_limit(pending_on_one_vcenter, monkeypatch):
    probe = ClaimProbe(job_queue._lock_output_paths)
    monkeypatch.setattr(job_queue, "_lock_output_paths", probe)
    claimed, errors = claim_at_once(pending_on_one_vcenter)

    assert errors == []
    assert len(claimed) == LIMIT
    assert probe.most_inside == 1  # no two claims of the vCenter ever past its count at once
    running = set(Job.objects.filter(status=Job.Status.RUNNING).values_list("id", flat=True))
    assert running == set(claimed)
    waiting = Job.objects.exclude(id__in=claimed)
    assert {(job.status, job.dispatched_at) for job in waiting} == {(Job.Status.PENDING, None)}

    # A slot freed, the next claim fits again, and only one.
    job_queue.finish_job(claimed[0], Job.Status.COMPLETED, result={})
    started = [job.id for job in waiting if job_queue.claim_job(job.id, "w-next") is not None]
    assert len(started) == 1
