"""How schedules read in a terminal: pure functions of the API's dicts (times in each
schedule's own zone)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cli.render import table, tsv_line

SCHEDULE_COLUMNS = ("ID", "NAME", "SCHEDULE", "ENABLED", "LAST RUN", "NEXT RUN")


def schedule_time(iso: str | None) -> str:
    """A schedule's run time as the API gives it: the wall clock of the schedule's own zone."""
    if not iso:
        return "-"
    # With the offset: the two passes of a repeated autumn hour read the same wall time.
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M%z")


def cron_text(schedule: dict[str, Any]) -> str:
    """``0 2 * * *  (At 02:00 AM)``: the expression and its reading."""
    description = schedule.get("cron_description")
    return f"{schedule['cron']}  ({description})" if description else schedule["cron"]


def schedule_table(schedules: list[dict[str, Any]]) -> list[str]:
    """Columns ID, NAME, SCHEDULE, ENABLED, LAST RUN, NEXT RUN (times in each schedule's zone)."""
    rows = [
        (
            schedule["id"],
            schedule["name"],
            cron_text(schedule),
            ("yes" if schedule["enabled"] else "no") + (", FAILING" if schedule.get("failing") else ""),
            _last_run(schedule),
            _next_run(schedule),
        )
        for schedule in schedules
    ]
    # Below the table, one line each: a reason is too long for a column.
    failing = [
        f"{schedule['id']} ({schedule['name']}) is failing: {schedule['failure_reason']}"
        for schedule in schedules
        if schedule.get("failing")
    ]
    return table(SCHEDULE_COLUMNS, rows) + failing


def _last_run(schedule: dict[str, Any]) -> str:
    """The last run, and how many slots were missed (the daemon was down at them)."""
    last = schedule_time(schedule["last_run_at"])
    missed = schedule.get("missed_count") or 0
    return f"{last} ({missed} missed)" if missed else last


def _next_run(schedule: dict[str, Any]) -> str:
    if not schedule["next_run_at"]:
        return "-"
    return f"{schedule_time(schedule['next_run_at'])} {schedule['timezone']}"


def schedule_tsv(schedules: list[dict[str, Any]]) -> list[str]:
    """For scripts: ``id<TAB>name<TAB>cron<TAB>enabled`` (enabled: true or false)."""
    return [
        tsv_line(schedule["id"], schedule["name"], schedule["cron"], str(schedule["enabled"]).lower())
        for schedule in schedules
    ]


def _when(schedule: dict[str, Any]) -> str:
    if not schedule["enabled"]:
        return "disabled, no next run"
    return f"next run {_next_run(schedule)}"


def schedule_created_line(schedule: dict[str, Any]) -> str:
    return f"created schedule {schedule['id']} ({schedule['name']}): {schedule['cron']} — {_when(schedule)}"


def schedule_enabled_line(schedule: dict[str, Any]) -> str:
    if not schedule["enabled"]:
        return f"disabled schedule {schedule['id']} ({schedule['name']}): no runs until it is enabled"
    return f"enabled schedule {schedule['id']} ({schedule['name']}): {schedule['cron']} — {_when(schedule)}"


def schedule_triggered_line(answer: dict[str, Any]) -> str:
    return f"triggered {answer['schedule_id']}: job {answer['job_id']}"
