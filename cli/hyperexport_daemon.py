"""``hyperexport``'s daemon modes: submit a job (--use-daemon [--watch]), --daemon-watch,
--daemon-list, --daemon-status and --daemon-schedule, through the local services or a remote
daemon."""

from __future__ import annotations

import json
import os
from typing import Any

from cli import render, render_preflight, render_schedules
from cli.backends import JobsBackend, UsageError, open_backend
from cli.flags import job_spec_from_flags
from cli.follow import watch_job
from cli.terminal import Terminal
from exports.pipeline.options import InvalidOptions, check_requirements


def run_daemon_mode(mode: str, opts: dict[str, Any], terminal: Terminal) -> int:
    return terminal.run(lambda: _run(mode, opts, terminal))


def _run(mode: str, opts: dict[str, Any], terminal: Terminal) -> int:
    if mode == "daemon_schedule":
        split_schedule(opts["daemon_schedule"])  # a malformed value is a usage error before anything else
    backend = open_backend(opts["daemon_url"], opts["token_file"])
    with backend.reading_answers():
        return _run_mode(mode, backend, opts, terminal)


def _run_mode(mode: str, backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    quiet = opts["quiet"]
    if mode == "use_daemon" and opts["preflight"]:
        return preflight(backend, job_spec(opts, local=backend.is_local), terminal, quiet=quiet)
    if mode == "use_daemon":
        return submit(
            backend, job_spec(opts, local=backend.is_local), terminal, watch=opts["watch"], quiet=quiet
        )
    if mode == "daemon_watch":
        return watch_job(backend, opts["daemon_watch"], terminal, quiet=quiet)
    if mode == "daemon_list":
        return list_jobs(backend, opts["daemon_list"], terminal, quiet=quiet)
    if mode == "daemon_schedule":
        return create_schedule(backend, opts, terminal, quiet=quiet)
    return show_status(backend, terminal, quiet=quiet)


def job_spec(opts: dict[str, Any], *, local: bool) -> dict[str, Any]:
    """The API's job spec from the flags given; what was not given is left to the daemon."""
    spec: dict[str, Any] = {"vm_path": opts["vm"]}
    if opts["output"]:
        output = opts["output"]
        if not os.path.isabs(os.path.expanduser(output)):
            if not local:
                raise UsageError(f"-output {output}: give an absolute path on the daemon's machine")
            output = os.path.abspath(output)
        spec["output_path"] = output
    if opts["vcenter"] is not None:
        spec["vcenter"] = opts["vcenter"]
    try:
        spec.update(job_spec_from_flags(opts))
        # Known here, as in a direct export (-define needs -libvirt): a usage error before any
        # request. What only the daemon knows (its allowed -define URIs) is its answer's error.
        check_requirements(spec, surface="cli")
    except InvalidOptions as exc:
        raise UsageError(str(exc)) from None
    return spec


def submit(
    backend: JobsBackend, spec: dict[str, Any], terminal: Terminal, *, watch: bool, quiet: bool
) -> int:
    job_id = backend.submit_job(spec)["job_ids"][0]
    terminal.say(render.printable(job_id) if quiet else render.submitted_line(job_id))
    return watch_job(backend, job_id, terminal, quiet=quiet) if watch else 0


def preflight(backend: JobsBackend, spec: dict[str, Any], terminal: Terminal, *, quiet: bool) -> int:
    """``-preflight`` through the daemon: its findings for the job ``spec`` would be, printed as
    the direct mode prints them; exit 0 without a blocker, 1 with one."""
    spec = {name: value for name, value in spec.items() if name != "preflight"}
    report = backend.preflight(spec)  # POST /vms/preflight, or the local preflight_spec
    findings = report["findings"]
    for line in render_preflight.preflight_lines(spec["vm_path"], findings, quiet=quiet):
        terminal.say(line)
    return render_preflight.exit_status(findings)


def split_schedule(value: str) -> tuple[str, str]:
    """``"daily-backup:0 3 * * *"`` → name and cron, at the first colon (the cron holds spaces)."""
    name, colon, expression = value.partition(":")
    if not colon or not name.strip() or not expression.strip():
        raise UsageError(f'--daemon-schedule {value!r}: give "name:cron", e.g. "daily-backup:0 3 * * *"')
    return name.strip(), expression.strip()


def create_schedule(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal, *, quiet: bool) -> int:
    name, expression = split_schedule(opts["daemon_schedule"])
    schedule = backend.create_schedule(
        {"name": name, "cron": expression, **job_spec(opts, local=backend.is_local)}
    )
    terminal.say(schedule["id"] if quiet else render_schedules.schedule_created_line(schedule))
    return 0


def list_jobs(backend: JobsBackend, status: str, terminal: Terminal, *, quiet: bool) -> int:
    jobs = backend.query_jobs(status=status)["results"]
    if quiet:
        lines = render.job_tsv(jobs)
    elif jobs:
        lines = render.job_table(jobs)
    else:
        lines = ["no jobs" if status == "all" else f"no {status} jobs"]
    for line in lines:
        terminal.say(line)
    return 0


def show_status(backend: JobsBackend, terminal: Terminal, *, quiet: bool) -> int:
    status = backend.daemon_status()
    for line in [json.dumps(status, indent=2)] if quiet else render.status_lines(status, backend.where):
        terminal.say(line)
    return 0
