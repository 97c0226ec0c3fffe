"""`hyperctl vms list|info` against a vSphere simulator of its own, through a live daemon
(remote) and on the local services (the vCenter of GOVC_* or the database's); VM names as a
vCenter's users may type them (line breaks, C1 controls, bidirectional overrides, '/') print as
one escaped line each."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pytest

from cli import render_vms
from cli.backends import CLIError, LocalBackend, RemoteBackend
from cli.backends.remote import _vm_path
from cli.render import printable
from tests.cli_runner import run_in_process, run_process
from tests.conftest import bare_env, govc_environment, register_vcenter, start_simulator

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db(transaction=True)]

WEB01 = "/dc/vm/prod/web01"
FOLDER = "/dc/vm/clitest"
# What a vCenter's SOAP can carry: a line break, a tab, C1's CSI (an 8-bit ESC [) and a bidi
# override ("exe.png" reversed reads "gnp.exe" to the eye).
HOSTILE = ["two\nlines\tand\x9b2Jclear", "\u202egnp.exe", "a%2fb"]  # the last: "a/b", as vCenter holds it
HEADER = ["NAME", "PATH", "POWER", "GUEST", "CPUS", "MEMORY", "DISKS", "EST. SIZE"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    sim = start_simulator(tmp_path_factory.mktemp("hyperctl-vms"))
    for name in HOSTILE:
        sim.create_vm(FOLDER, name, [])
    yield sim
    sim.stop()


@pytest.fixture
def env(cli_env, sim, monkeypatch) -> dict[str, str]:
    """This module's simulator as the default vCenter: in the command's environment (local) and
    in this process's, where the live daemon (remote) reads it."""
    govc = govc_environment(sim)
    for key, value in govc.items():
        monkeypatch.setenv(key, value)
    return cli_env | govc


def hyperctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_in_process("hyperctl", *args, env=env)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_prints_a_table_and_says_when_the_inventory_was_read(env):
    done = hyperctl("vms", "list", "-folder", "/dc/vm/prod", env=env)
    header, *rows = ok(done).splitlines()
    assert header.split("  ")[0] == "NAME"
    assert [column for column in HEADER if column in header] == HEADER
    assert len(rows) == 4
    web01 = next(row for row in rows if row.startswith("web01 "))
    assert WEB01 in web01 and ("MiB" in web01 or "GiB" in web01)
    assert done.stderr.startswith("inventory of the default vCenter read at ")
    # Local time, with its offset from UTC: "... read at 2026-12-07 15:02:11 +0100: ..."
    assert re.search(r"read at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}: ", done.stderr), done.stderr


def test_quiet_prints_paths_and_json_parses(env):
    quiet = ok(hyperctl("vms", "list", "-q", "web", "-quiet", env=env)).splitlines()
    assert quiet == ["/dc/vm/prod/web01", "/dc/vm/prod/web02"]
    rows = json.loads(ok(hyperctl("vms", "list", "-q", "web", "-json", env=env)))
    assert [row["path"] for row in rows] == quiet
    assert {"moref", "power_state", "estimated_export_bytes", "disk_count"} <= set(rows[0])


def test_power_and_guest_filters(env):
    every = json.loads(ok(hyperctl("vms", "list", "-all", "-json", env=env)))
    for state in ("on", "off"):
        listed = json.loads(ok(hyperctl("vms", "list", "-all", "-json", "-power", state, env=env)))
        assert [row["moref"] for row in listed] == [
            row["moref"] for row in every if row["power_state"] == state
        ]
    guest = every[0]["guest_id"]
    assert json.loads(ok(hyperctl("vms", "list", "-json", "-guest", guest.upper(), env=env)))
    assert ok(hyperctl("vms", "list", "-guest", "no-such-os", env=env)) == "no VMs\n"


def test_a_page_past_the_end_is_an_error(env):
    done = hyperctl("vms", "list", "-page", "9", env=env)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "error: there is no page 9: That page contains no results\n"


def test_info_shows_every_field_and_the_devices_as_tables(env):
    vm = json.loads(ok(hyperctl("vms", "info", WEB01, "-json", env=env)))
    assert (vm["path"], vm["vcenter"]) == (WEB01, None)
    lines = ok(hyperctl("vms", "info", vm["moref"], env=env)).splitlines()
    labels = {line.split(":", 1)[0] for line in lines if ":" in line and not line.startswith(" ")}
    assert {
        "moref",
        "name",
        "path",
        "power state",
        "guest full name",
        "memory",
        "estimated export",
        "vcenter",
    } <= labels
    assert f"disks ({len(vm['disks'])}):" in lines
    assert any(line.split()[:3] == ["LABEL", "CAPACITY", "PROVISIONING"] for line in lines)
    assert f"NICs ({len(vm['nics'])}):" in lines and f"drives ({len(vm['drives'])}):" in lines


def test_an_unknown_vm_or_vcenter_is_one_error_line(env):
    for args in (("vms", "info", "/dc/vm/prod/nothing-here"), ("vms", "list", "-vcenter", "nowhere")):
        done = hyperctl(*args, env=env)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "vcenter" in hyperctl("vms", "list", "-vcenter", "nowhere", env=env).stderr
    # The pipeline's wording, the path as given (remotely too, where the URL drops its '/').
    for ref in ("/dc/vm/prod/nothing-here", "dc/vm/prod/nothing-here"):
        done = hyperctl("vms", "info", ref, env=env)
        assert done.stderr == "error: VM not found: /dc/vm/prod/nothing-here\n"


def test_a_named_vcenter_from_the_database(env, sim):
    register_vcenter(sim, "lab")
    done = hyperctl("vms", "list", "-vcenter", "lab", "-q", "web01", "-quiet", env=env)
    assert ok(done) == f"{WEB01}\n"
    assert (
        json.loads(ok(hyperctl("vms", "info", WEB01, "-vcenter", "lab", "-json", env=env)))["vcenter"]
        == "lab"
    )


def test_an_unreachable_vcenter_says_why_without_the_password(env):
    from exports.models import VCenter

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = VCenter(name="down", url=f"https://127.0.0.1:{port}/sdk", username="root", insecure=True)
    down.password = "hunter2-never-shown"
    down.save()
    done = hyperctl("vms", "list", "-vcenter", "down", env=env)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "HTTP 502" not in done.stderr  # the daemon's reason, not only its status
    assert "hunter2" not in done.stdout + done.stderr


def test_hostile_names_print_as_one_escaped_line_each(env):
    quiet = ok(hyperctl("vms", "list", "-folder", FOLDER, "-refresh", "-quiet", env=env)).splitlines()
    assert sorted(quiet) == sorted(
        [f"{FOLDER}/two\\nlines\\tand\\x9b2Jclear", f"{FOLDER}/\\u202egnp.exe", f"{FOLDER}/a%2fb"]
    )
    table = ok(hyperctl("vms", "list", "-folder", FOLDER, env=env))
    assert len(table.splitlines()) == 1 + len(HOSTILE)
    for raw in ("\x9b", "\u202e", "\t"):
        assert raw not in table
    slashed = json.loads(ok(hyperctl("vms", "list", "-folder", FOLDER, "-q", "a/b", "-json", env=env)))
    assert [(row["name"], row["path"]) for row in slashed] == [
        ("a%2fb", f"{FOLDER}/a%2fb")
    ]  # as vCenter has it
    assert [f"{FOLDER}/a%2fb"] == [line.split()[1] for line in table.splitlines() if line.split()[0] == "a/b"]
    info = ok(hyperctl("vms", "info", f"{FOLDER}/a%2fb", env=env)).splitlines()
    assert f"{FOLDER}/a%2fb" in next(line for line in info if line.startswith("path:"))
    assert next(line for line in info if line.startswith("name:")).endswith(" a/b")  # as `vms list` says
    for name in HOSTILE:
        hostile = json.loads(ok(hyperctl("vms", "info", f"{FOLDER}/{name}", "-json", env=env)))
        assert hostile["name"] == name  # the JSON keeps the name, escaped by JSON itself
    lines = ok(hyperctl("vms", "info", f"{FOLDER}/{HOSTILE[0]}", env=env)).splitlines()
    assert "name:" in lines[1] and lines[1].endswith("two\\nlines\\tand\\x9b2Jclear")


def test_the_console_script_lists_and_its_help_loads_no_django(env, tmp_path):
    done = run_process("hyperctl", "vms", "list", "-q", "db01", "-quiet", env=env)
    assert (done.returncode, done.stdout) == (0, "/dc/vm/prod/db01\n"), done.stderr
    probe = (
        "import sys; sys.argv = ['hyperctl', 'vms', 'list', '-h']\n"
        "from hypersdk.cli import hyperctl\n"
        "try:\n    hyperctl()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('django.apps', 'django.db.models', 'rest_framework') if m in sys.modules]\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    help_run = subprocess.run(
        [sys.executable, "-c", probe], env=bare_env(tmp_path), capture_output=True, text=True
    )
    assert "LOADED []" in help_run.stderr and "-power {on,off,suspended}" in help_run.stdout


def test_both_backends_preflight_a_job_spec_alike(daemon, sim, monkeypatch):
    for key, value in govc_environment(sim).items():
        monkeypatch.setenv(key, value)
    remote, local = RemoteBackend(daemon.url, daemon.token), LocalBackend()
    reports = [backend.preflight({"vm_path": WEB01}) for backend in (remote, local)]
    assert [report["vm"]["path"] for report in reports] == [WEB01, WEB01]
    assert reports[0]["blocked"] == reports[1]["blocked"]
    assert [f["code"] for f in reports[0]["findings"]] == [f["code"] for f in reports[1]["findings"]]
    for backend in (remote, local):
        with pytest.raises(CLIError, match="^vm_path: give the VM's inventory path"):
            backend.preflight({"vm_path": "web01"})


# ---- without a daemon: the renderer and the remote backend's paths ------------------------------


def summary(name: str, path: str) -> dict:
    return {
        "name": name,
        "path": path,
        "power_state": "off",
        "guest_full_name": "",
        "guest_id": "otherGuest64",
        "cpus": 2,
        "memory_mb": 4096,
        "disk_count": 1,
        "estimated_export_bytes": 3 * 2**30,
    }


@pytest.mark.parametrize(
    "name", ["\x1b[2J\x1b]0;owned\x07", "a\u2028b\u2029c", "\u2066x\u2069\u200f", "\r\x85"]
)
def test_a_name_of_control_or_bidi_characters_cannot_reach_the_terminal(name):
    lines = render_vms.vm_table([summary(name, f"/dc/vm/{name}")]) + render_vms.vm_paths(
        [summary(name, "/p/" + name)]
    )
    assert len(lines) == 3
    for line in lines:
        assert line.isprintable() and line == printable(line)
    assert "4.0 GiB" in lines[1] and "3.0 GiB" in lines[1]


def test_a_slash_in_a_name_is_sent_as_percent_25_2f_and_dot_segments_survive():
    assert _vm_path("/dc/vm/x/a%2fb") == "/vms/dc/vm/x/a%252fb"
    assert _vm_path("dc/vm/x/a b?#") == "/vms/dc/vm/x/a%20b%3F%23"
    assert _vm_path("/dc/vm/../..") == "/vms/dc/vm/%2E%2E/%2E%2E"
    assert _vm_path("vm-42") == "/vms/vm-42"
    with pytest.raises(CLIError):
        _vm_path("/")


def test_all_vms_come_in_pages_a_fresh_one_of_which_the_daemon_reads_quickly(daemon, sim, monkeypatch):
    """-all asks for small pages (each a fresh page costs the daemon a read of every VM's record
    from vCenter) and lists each VM once across them."""
    from cli.backends import remote as remote_module

    for key, value in govc_environment(sim).items():
        monkeypatch.setenv(key, value)
    remote = RemoteBackend(daemon.url, daemon.token)
    asked: list[int] = []
    remote._http.event_hooks["request"].append(lambda r: asked.append(int(r.url.params["page_size"])))
    everything = remote.list_vms(page=None)
    assert asked == [remote_module.VMS_ALL_PAGE_SIZE] and remote_module.VMS_ALL_PAGE_SIZE <= 200

    monkeypatch.setattr(remote_module, "VMS_ALL_PAGE_SIZE", 3)
    asked.clear()
    paged = remote.list_vms(page=None)
    assert len(asked) == -(-paged["count"] // 3) > 1
    assert sorted(row["moref"] for row in paged["results"]) == sorted(
        r["moref"] for r in everything["results"]
    )


@pytest.mark.parametrize("name", ["web\u200b01", "\ufeffweb01", "web\u00ad01", "\u2060x"])
def test_a_name_with_a_format_character_shows_it_escaped(name):
    """A zero-width space or other format character (Unicode Cf) would make a name look like
    another's: it is shown escaped, like the control characters."""
    [_, row] = render_vms.vm_table([summary(name, f"/dc/vm/{name}")])
    assert row.isprintable()
    escaped = name.encode("unicode_escape").decode("ascii")
    assert row.startswith(escaped + " ") and f"/dc/vm/{escaped}" in row
    assert render_vms.vm_paths([summary(name, f"/dc/vm/{name}")]) == [f"/dc/vm/{escaped}"]


def test_columns_align_by_display_width_with_double_width_names():
    from wcwidth import wcswidth

    rows = render_vms.vm_table(
        [summary("数据库服务器", "/dc/vm/数据库服务器"), summary("web01", "/dc/vm/web01")]
    )
    starts = {wcswidth(row[: row.index("/dc/vm/")]) for row in rows[1:]}
    assert len(starts) == 1 and wcswidth(rows[0][: rows[0].index("PATH")]) in starts
