"""A preflight finding: one definition for every door (CLI, API, dashboard, the job's log).

``level``: ``blocker`` (the export would fail or export the wrong thing: the job refuses),
``warning`` (it runs, but the operator should know), ``info``. ``code`` is a stable
kebab-case name (``powered-on``, ``snapshots``, ``independent-disk`` ...), ``reason`` one line
saying what is wrong, ``action`` one line saying what to do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

LEVELS = ("blocker", "warning", "info")


@dataclass(frozen=True)
class Finding:
    level: str
    code: str
    reason: str
    action: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """``blocker: <reason> (<action>)``: how the CLI and the job's log print it."""
        return f"{self.level}: {self.reason} ({self.action})"


def blockers(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "blocker"]
