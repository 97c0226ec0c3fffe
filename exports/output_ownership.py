"""Which job owns an output path: a job owns its output directory, and what is inside or
around it, from submission until it ends. Submission and the claim both ask here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from django.db.models import Q, QuerySet

from exports.models import Job


def paths_overlap(a: str, b: str) -> bool:
    """Whether one output path is the other, or inside it."""
    first, second = PurePosixPath(a), PurePosixPath(b)
    return first == second or first.is_relative_to(second) or second.is_relative_to(first)


class ActiveOutputs:
    """Output paths of jobs, indexed to find the first job added whose path is a given path,
    inside it, or around it in O(depth of the path) (the test ``paths_overlap`` makes, exact
    and case-sensitive).
    """

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        # path -> (order added, job) of the first job added whose path it is / is around.
        self._at: dict[str, tuple[int, Job]] = {}
        self._around: dict[str, tuple[int, Job]] = {}
        self._added = 0
        for job in jobs:
            self.add(job)

    def add(self, job: Job) -> None:
        path = PurePosixPath(job.output_path)
        entry = (self._added, job)
        self._added += 1
        self._at.setdefault(str(path), entry)
        for parent in path.parents:
            self._around.setdefault(str(parent), entry)

    def holder(self, path: str) -> Job | None:
        """The first job added whose output path is ``path``, inside it, or contains it."""
        cleaned = PurePosixPath(path)
        found = [self._at.get(str(cleaned)), self._around.get(str(cleaned))]
        found += [self._at.get(str(parent)) for parent in cleaned.parents]
        entries = [entry for entry in found if entry is not None]
        return min(entries, key=lambda entry: entry[0])[1] if entries else None


def active_jobs(*, exclude: str | None = None, statuses: tuple[str, ...] = Job.ACTIVE) -> QuerySet[Job]:
    jobs = Job.objects.filter(status__in=statuses)
    if exclude:
        jobs = jobs.exclude(id=exclude)
    return jobs.order_by("created_at", "id").only("id", "status", "vm_path", "output_path")


def output_path_holder(
    path: str, *, exclude: str | None = None, statuses: tuple[str, ...] = Job.ACTIVE
) -> Job | None:
    """The oldest job in ``statuses`` whose output path is ``path``, inside it, or contains it."""
    cleaned = str(PurePosixPath(path))
    ancestors = [str(parent) for parent in PurePosixPath(cleaned).parents]
    candidates = active_jobs(exclude=exclude, statuses=statuses).filter(
        Q(output_path=cleaned)
        | Q(output_path__startswith=cleaned.rstrip("/") + "/")
        | Q(output_path__in=ancestors),
    )
    # startswith is case-insensitive on SQLite: the exact test is made here.
    for job in candidates:
        if paths_overlap(job.output_path, cleaned):
            return job
    return None


def output_in_use(holder: Job) -> str:
    """The one-line reason a path is refused because ``holder`` owns it."""
    return (
        f"in use by job {holder.id} ({holder.status}, {holder.vm_path} -> {holder.output_path}): "
        "a job owns its output directory, and what is inside or around it, until it ends"
    )
