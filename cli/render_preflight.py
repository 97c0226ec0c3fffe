"""How both doors of ``hyperexport -preflight`` (direct, and through the daemon) print a
preflight: one line per finding, ``<level>: <reason> (<action>)``, then a summary line. No
Django here: the direct mode loads none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cli.render import printable

LEVELS = ("blocker", "warning", "info")
# The exit status of a preflight: 0 the export may start (warnings and notes aside), 1 a
# blocker (the VM not found and vCenter unreachable are blockers too); usage errors stay 2.
EXIT_READY, EXIT_BLOCKED = 0, 1


def finding_line(finding: Mapping[str, Any]) -> str:
    """``blocker: <reason> (<action>)``, as ``Finding.line`` says it, on one printable line
    (a daemon's text, or a VM's path in it, may hold anything: escaped as ``cli.render.printable``)."""
    return printable(f"{finding['level']}: {finding['reason']} ({finding['action']})")


def counts(findings: list[Mapping[str, Any]]) -> str:
    """``1 blocker, 2 warnings, 1 note`` (blockers always, the others when there are some)."""
    number = {level: sum(1 for f in findings if f["level"] == level) for level in LEVELS}
    parts = [f"{number['blocker'] or 'no'} blocker{'' if number['blocker'] == 1 else 's'}"]
    if number["warning"]:
        parts.append(f"{number['warning']} warning{'' if number['warning'] == 1 else 's'}")
    if number["info"]:
        parts.append(f"{number['info']} note{'' if number['info'] == 1 else 's'}")
    return ", ".join(parts)


def summary_line(vm_path: str, findings: list[Mapping[str, Any]]) -> str:
    """``preflight: <vm> can be exported (no blockers, 1 warning)`` or ``preflight: <vm> cannot
    be exported (2 blockers)``."""
    blocked = any(f["level"] == "blocker" for f in findings)
    verdict = "cannot be exported" if blocked else "can be exported"
    return printable(f"preflight: {vm_path} {verdict} ({counts(findings)})")


def preflight_lines(vm_path: str, findings: list[Mapping[str, Any]], *, quiet: bool) -> list[str]:
    """What ``hyperexport -preflight`` prints on stdout: the findings (unless ``quiet``), then the summary."""
    lines = [] if quiet else [finding_line(f) for f in findings]
    return [*lines, summary_line(vm_path, findings)]


def exit_status(findings: list[Mapping[str, Any]]) -> int:
    return EXIT_BLOCKED if any(f["level"] == "blocker" for f in findings) else EXIT_READY
