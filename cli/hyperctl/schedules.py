"""``hyperctl schedules list|create|enable|disable|trigger|delete``: cron schedules of export jobs."""

from __future__ import annotations

from typing import Any

from cli import render_schedules
from cli.backends import JobsBackend
from cli.flags import add_job_flags, go_flag, whole_number
from cli.hyperctl.paged_resources import (
    add_id_actions,
    add_list_action,
    add_resource_group,
    say_page,
)
from cli.hyperexport_daemon import job_spec
from cli.terminal import Terminal
from schedules.limits import MAX_RETENTION

OVERLAP_CHOICES = ("skip", "allow")


def register(subparsers, parents) -> None:
    actions = add_resource_group(
        subparsers, parents, "schedules", help="cron schedules of export jobs: list, create, enable, ..."
    )

    add_list_action(
        actions,
        parents,
        "schedules",
        help="schedules by name, their next and last run: a page of 50, or -all",
        run=run_list,
        quiet="only id<TAB>name<TAB>cron<TAB>enabled lines",
    )

    create = actions.add_parser(
        "create",
        parents=parents,
        help="a schedule exporting a VM at each cron time",
        description='e.g. hyperctl schedules create daily-backup "0 2 * * *" -vm /dc/vm/prod/web01 '
        "-output /backups/web01",
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "cron", metavar="CRON", help='5 fields (minute hour day month weekday), e.g. "0 2 * * *"'
    )
    go_flag(create, "vm", required=True, metavar="PATH", help="inventory path, e.g. /dc/vm/prod/web01")
    add_job_flags(create)
    go_flag(
        create,
        "timezone",
        metavar="ZONE",
        help="the cron's time zone, e.g. Europe/Paris (default: the daemon's)",
    )
    go_flag(
        create, "overlap", choices=OVERLAP_CHOICES, help="skip (default): no run while the last one is going"
    )
    go_flag(
        create,
        "retention",
        type=whole_number("retention", 1, MAX_RETENTION),
        metavar="N",
        help="keep only the last N runs' output",
    )
    go_flag(create, "disabled", action="store_true", help="create it disabled")
    go_flag(create, "quiet", action="store_true", help="print only the schedule's id")
    create.set_defaults(run=run_create)

    add_id_actions(
        actions,
        parents,
        [
            ("enable", "resume a schedule's runs", run_enable),
            ("disable", "pause a schedule's runs", run_disable),
            ("trigger", "run a schedule's export now, without moving its next run", run_trigger),
            ("delete", "remove a schedule (its past jobs stay)", run_delete),
        ],
        dest="schedule_id",
        metavar="SCHEDULE_ID",
    )


def run_list(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    return say_page(
        backend.list_schedules,
        "schedules",
        opts,
        terminal,
        table=render_schedules.schedule_table,
        tsv=render_schedules.schedule_tsv,
    )


def run_create(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    schedule = backend.create_schedule(schedule_spec(opts, local=backend.is_local))
    terminal.say(schedule["id"] if opts["quiet"] else render_schedules.schedule_created_line(schedule))
    return 0


def schedule_spec(opts: dict[str, Any], *, local: bool) -> dict[str, Any]:
    """The API's schedule spec: name, cron, the schedule's own flags given, and the job's."""
    spec: dict[str, Any] = {"name": opts["name"], "cron": opts["cron"], **job_spec(opts, local=local)}
    spec.update(
        {name: opts[name] for name in ("timezone", "overlap", "retention") if opts.get(name) is not None}
    )
    if opts.get("disabled"):
        spec["enabled"] = False
    return spec


def run_enable(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    terminal.say(
        render_schedules.schedule_enabled_line(backend.set_schedule_enabled(opts["schedule_id"], True))
    )
    return 0


def run_disable(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    terminal.say(
        render_schedules.schedule_enabled_line(backend.set_schedule_enabled(opts["schedule_id"], False))
    )
    return 0


def run_trigger(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    terminal.say(render_schedules.schedule_triggered_line(backend.trigger_schedule(opts["schedule_id"])))
    return 0


def run_delete(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    backend.delete_schedule(opts["schedule_id"])
    terminal.say(f"deleted schedule {opts['schedule_id']}")
    return 0
