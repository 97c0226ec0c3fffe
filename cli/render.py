"""How jobs, logs and the daemon's status read in a terminal: pure functions of the API's dicts.
Schedules are ``cli.render_schedules``, webhooks ``cli.render_webhooks``; both use ``table``."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

import wcwidth

from exports.pipeline.options import OPTIONS
from hypersdk.lib.units import human_duration, human_size
from libvirt_domain.next_steps import next_commands

JOB_COLUMNS = ("ID", "STATUS", "PROGRESS", "VM", "OUTPUT", "CREATED")
OUTCOMES = {
    "completed": "✅ Job completed successfully!",
    "failed": "❌ Job failed: {error}",
    "cancelled": "⚠️ Job cancelled",
}
_FINISHED_TEXT = {"completed": "export finished", "failed": "export failed", "cancelled": "export cancelled"}


def local_time(iso: str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An API timestamp (ISO 8601, UTC) in this machine's time zone."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime(fmt)


def percent_text(job: dict[str, Any]) -> str:
    return "-" if job["status"] == "pending" else f"{job['progress']['percent']:.1f}%"


# C0, DEL, C1 and the Unicode line breaks: a daemon's ESC sequence, BEL or newline in a field
# would reach the terminal (or split a -quiet line) as is. And the format characters (Unicode
# category Cf), among them the bidirectional controls: a VM named "\u202egnp.exe" would read as
# "exe.png", one holding a zero-width space (U+200B) would look like another VM's name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _hidden(char: str) -> bool:
    return _CONTROL.match(char) is not None or unicodedata.category(char) == "Cf"


def printable(value: object) -> str:
    """``value`` as text with each control or format character escaped (``\\x1b``, ``\\n``,
    ``\\u200b``): one cell."""
    text = str(value)
    if text.isprintable():  # no Cc or Cf (nor other invisibles): the common case, at C speed
        return text
    return "".join(char.encode("unicode_escape").decode("ascii") if _hidden(char) else char for char in text)


def display_width(text: str) -> int:
    """Columns ``text`` (printable) takes in a terminal: a CJK character two, a combining mark none."""
    width = wcwidth.wcswidth(text)
    return width if width >= 0 else len(text)


def tsv_line(*fields: object) -> str:
    """For scripts: the fields, printable, separated by tabs (a tab in a field is escaped)."""
    return "\t".join(printable(field) for field in fields)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Aligned columns of printable cells; nothing cut, for copy and paste."""
    rows = [tuple(printable(cell) for cell in row) for row in (header, *rows)]
    sizes = [[display_width(cell) for cell in row] for row in rows]
    widths = [max(size[column] for size in sizes) for column in range(len(header))]
    return [
        "  ".join(
            cell + " " * (width - size) for cell, size, width in zip(row, cell_sizes, widths, strict=True)
        ).rstrip()
        for row, cell_sizes in zip(rows, sizes, strict=True)
    ]


def job_table(jobs: list[dict[str, Any]]) -> list[str]:
    """Columns ID, STATUS, PROGRESS, VM, OUTPUT, CREATED."""
    rows = [
        (
            job["id"],
            status_text(job),
            percent_text(job),
            job["vm_path"],
            job["output_path"],
            local_time(job["created_at"]),
        )
        for job in jobs
    ]
    return table(JOB_COLUMNS, rows)


def status_text(job: dict[str, Any]) -> str:
    """The status, with the detail a completed job may carry: ``completed (files missing)``."""
    detail = job.get("status_detail")
    return f"{job['status']} ({detail})" if detail else job["status"]


def job_tsv(jobs: list[dict[str, Any]]) -> list[str]:
    """For scripts: ``job-id<TAB>status<TAB>vm-path``."""
    return [tsv_line(job["id"], job["status"], job["vm_path"]) for job in jobs]


def options_text(job: dict[str, Any]) -> str:
    """``format=ova compress manifest target=qcow2 parallel=4 ...``: each export option a job
    asked for, in declaration order (exports.pipeline.options); a value only where it matters."""
    options = job.get("options") or {}
    parts = []
    for option in OPTIONS:
        value = options.get(option.name, job.get(option.name))
        name = option.summary_name or option.flag_name or option.name
        if option.kind == "switch":
            parts += [name] if value else []
            continue
        if option.shown_with and not any(job.get(on, options.get(on)) for on in option.shown_with):
            continue
        if value is None and option.shown_with and not option.stored_when_given:
            value = option.api_default  # a row from before the option was stored
        if value not in (None, ""):
            parts.append(f"{name}={value}{option.api_unit_suffix}")
    return " ".join(parts)


def progress_text(job: dict[str, Any]) -> str:
    if job["status"] == "pending":
        return "-"
    progress = job["progress"]
    text = " ".join(
        part for part in (f"{progress['percent']:.1f}%", progress["phase"], progress["current_file"]) if part
    )
    if progress["bytes_total"]:
        text += f" ({human_size(progress['bytes_done'])} of {human_size(progress['bytes_total'])}"
        if job["status"] == "running" and progress["rate_bps"]:
            text += f", {human_size(progress['rate_bps'])}/s"
            if progress["eta_seconds"] is not None:
                text += f", {human_duration(progress['eta_seconds'])} left"
        text += ")"
    return text


def job_detail(job: dict[str, Any]) -> list[str]:
    status = status_text(job)
    if job.get("cancel_requested") and status == "running":
        status += " (cancel requested)"
    fields = [
        ("ID", job["id"]),
        ("Status", status),
        ("VM", job["vm_path"]),
        ("vCenter", job["vcenter"] or "default (the workers' GOVC_* settings)"),
        ("Output", job["output_path"]),
        ("Options", options_text(job)),
        ("Progress", progress_text(job)),
        ("Origin", job["origin"]),
        ("Created", local_time(job["created_at"])),
        ("Started", local_time(job["started_at"])),
        ("Finished", local_time(job["finished_at"])),
        ("Duration", human_duration(job["duration_seconds"])),
        ("Worker", job["worker"] or "-"),
    ]
    if job["error"]:
        fields.append(("Error", job["error"]))
    for index, path in enumerate(job.get("missing_files") or []):
        fields.append(("Missing" if index == 0 else "", path))
    fields += _result_fields(job.get("result") or {})
    width = max(len(label) for label, _ in fields) + 2
    return [f"{label + ':' if label else '':<{width}}{value}" for label, value in fields]


def _result_fields(result: dict[str, Any]) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for index, file in enumerate(result.get("files") or []):
        fields.append(
            (
                "Files" if index == 0 else "",
                f"{file['name']}  {human_size(file['size'])}  sha256:{file['sha256']}",
            )
        )
    if result.get("total_bytes"):
        fields.append(("Total", human_size(result["total_bytes"])))
    if result.get("manifest_path"):
        fields.append(("Manifest", result["manifest_path"]))
    for index, converted in enumerate((result.get("conversion") or {}).get("outputs") or []):
        fields.append(
            ("Converted" if index == 0 else "", f"{converted['output']}  {human_size(converted['size'])}")
        )
    for index, check in enumerate(result.get("verified") or []):
        fields.append(("Verified" if index == 0 else "", check))
    return fields + _domain_fields(result)


def _domain_fields(result: dict[str, Any]) -> list[tuple[str, str]]:
    """-libvirt: the domain file, where it was defined, and the commands to run next."""
    path, name, defined = _domain(result)
    if not path:
        return []
    refused, uri = _define_refused(result)
    fields = [("Domain", printable(path) + (f"  (defined at {printable(defined)})" if defined else ""))]
    if refused:
        fields.append(("Not defined", printable(refused)))
    for index, command in enumerate(next_commands(path, name, defined or None, uri or None)):
        fields.append(("Next" if index == 0 else "", printable(command)))
    return fields


def _define_refused(result: dict[str, Any]) -> tuple[str, str]:
    """(why libvirt refused the -define, at which URI), "" each when it was not refused."""
    conversion = result.get("conversion")
    plan = conversion.get("libvirt_domain") if isinstance(conversion, dict) else None
    plan = plan if isinstance(plan, dict) else {}
    error, uri = plan.get("define_error"), plan.get("define_uri")
    return (error if isinstance(error, str) else "", uri if isinstance(uri, str) else "")


def _domain(result: dict[str, Any]) -> tuple[str, str, str]:
    """(the domain file's path, the domain's name, the URI it was defined at), "" for each
    the result does not say (no -libvirt: no path)."""
    path = result.get("libvirt_domain")
    conversion = result.get("conversion")
    plan = conversion.get("libvirt_domain") if isinstance(conversion, dict) else None
    plan = plan if isinstance(plan, dict) else {}
    name, defined = plan.get("name"), plan.get("defined")
    return (
        path if isinstance(path, str) else "",
        name if isinstance(name, str) else "",
        defined if isinstance(defined, str) else "",
    )


def domain_lines(job: dict[str, Any]) -> list[str]:
    """After a completed job's outcome (watch): its libvirt domain and the commands to run next."""
    path, name, defined = _domain(job.get("result") or {})
    if not path:
        return []
    where = f" (defined at {printable(defined)})" if defined else ""
    refused, uri = _define_refused(job.get("result") or {})
    return [
        f"libvirt domain: {printable(path)}{where}",
        *([f"  warning: not defined: {printable(refused)}"] if refused else []),
        *(
            f"  next: {printable(command)}"
            for command in next_commands(path, name, defined or None, uri or None)
        ),
    ]


def watch_text(job: dict[str, Any]) -> str:
    """What ``watch`` says of a job; a new line is printed whenever this changes."""
    status, progress = job["status"], job["progress"]
    if status == "pending":
        return "pending - waiting for a worker"
    if status == "running":
        activity = (
            " ".join(part for part in (progress["phase"], progress["current_file"]) if part) or "starting"
        )
        text = f"running {progress['percent']:.1f}% - {activity}"
        return text + " (cancel requested)" if job.get("cancel_requested") else text
    return f"{status} - {_FINISHED_TEXT.get(status, status)}"


def watch_line(job: dict[str, Any], now: datetime) -> str:
    return f"[{now:%H:%M:%S}] {watch_text(job)}"


def outcome_line(job: dict[str, Any]) -> str:
    return OUTCOMES[job["status"]].format(error=job["error"] or "no error recorded")


def log_line(entry: dict[str, Any]) -> str:
    return f"{local_time(entry['at'])} {entry['level'].upper():<7} {entry['message']}"


def submitted_line(job_id: str) -> str:
    return f"submitted {job_id}"


def cancel_line(answer: dict[str, Any]) -> str:
    if answer["status"] == "cancelled":
        return f"cancelled {answer['job_id']} (it had not started)"
    return f"cancel requested for {answer['job_id']}: its worker stops it within seconds"


def status_lines(status: dict[str, Any], where: str) -> list[str]:
    uptime = status.get("uptime_seconds")
    daemon = f"{status['health']}, version {status['version']}"
    daemon += (
        f", up {human_duration(uptime)}"
        if uptime is not None
        else ", uptime unknown (no hypervisord runs here)"
    )
    workers = status.get("workers") or []
    counts = status.get("jobs") or {}
    system = status.get("system") or {}
    fields: list[tuple[str, str]] = [
        ("Daemon", f"{daemon} ({where})"),
        ("Database", status.get("database", "-")),
        (
            "Workers",
            f"{len(workers)} answering: {', '.join(workers)}"
            if workers
            else "none answering (jobs wait until a worker runs)",
        ),
        (
            "Jobs",
            ", ".join(
                f"{counts.get(name, 0)} {name}"
                for name in ("running", "pending", "completed", "failed", "cancelled")
            )
            + f" (at most {status.get('max_concurrent_exports', '?')} exports at once per vCenter)",
        ),
    ]
    active = status.get("active_jobs") or []
    if not active:
        fields.append(("Active jobs", "none"))
    for index, job in enumerate(active):
        fields.append(
            (
                "Active jobs" if index == 0 else "",
                f"{job['id']}  {job['percent']:.1f}% {job['phase'] or 'starting'}  {job['vm_path']}  on {job['worker'] or '-'}",
            )
        )
    if system:
        load = " ".join(f"{value:.2f}" for value in system.get("load_average", []))
        fields.append(
            (
                "System",
                f"load {load}, {system.get('cpu_count')} CPUs, memory {system.get('memory_percent', 0):.1f}% used "
                f"({human_size(system.get('memory_available_bytes', 0))} of "
                f"{human_size(system.get('memory_total_bytes', 0))} available)",
            )
        )
    for index, root in enumerate(status.get("export_roots") or []):
        space = (
            f"{human_size(root['free_bytes'])} free of {human_size(root['total_bytes'])}"
            if root.get("exists")
            else "missing"
        )
        fields.append(("Export roots" if index == 0 else "", f"{root['path']} ({space})"))
    width = max(len(label) for label, _ in fields) + 2
    return [f"{label + ':' if label else '':<{width}}{value}" for label, value in fields]
