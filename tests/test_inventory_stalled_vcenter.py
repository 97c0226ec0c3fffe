"""A vCenter that stops answering after log-in (the simulator behind a proxy that holds its
answers): every inventory door answers one line within the inventory's call timeout, without
a log-out that would wait as long again, and ``hyperexport -preflight`` ends on SIGTERM at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from exports.pipeline.errors import VCenterConnectionError
from inventory import cache, service
from tests.cli_runner import run_in_process
from tests.conftest import start_simulator
from tests.vcenter_proxy import AnswerProxy

pytestmark = [pytest.mark.vsphere, pytest.mark.django_db]

WEB01 = "/dc/vm/prod/web01"
HYPEREXPORT = str(Path(sys.executable).parent / "hyperexport")


class Stall:
    """The proxy's rewrite: past ``start()``, each retrieval or log-out is held until ``release()``;
    ``held`` is set when one is being held, ``seen`` lists the SOAP methods held."""

    def __init__(self) -> None:
        self.stalling = False
        self.held = threading.Event()
        self.released = threading.Event()
        self.seen: list[str] = []

    def __call__(self, request: bytes, status: int, body: bytes) -> tuple[int, bytes]:
        method = next((m for m in ("RetrievePropertiesEx", "Logout") if m.encode() in request), "")
        if self.stalling and method:
            self.seen.append(method)
            self.held.set()
            self.released.wait()
        return status, body


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[AnswerProxy]:
    sim = start_simulator(tmp_path_factory.mktemp("stalled-vcenter"))
    proxy = AnswerProxy(sim, tmp_path_factory.mktemp("stalled-proxy"))
    yield proxy
    proxy.stop()
    sim.stop()


@pytest.fixture
def stall(proxy, monkeypatch, settings) -> Iterator[Stall]:
    """The daemon's default vCenter is the simulator through the stalling proxy; calls wait 1 s."""
    for key, value in proxy.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GOVC_INSECURE", raising=False)
    monkeypatch.setattr(service, "CALL_TIMEOUT", 1.0)
    settings.HYPERSDK_INVENTORY_CACHE_SECONDS = 300
    cache.clear()
    held = Stall()
    proxy.rewrite = held
    yield held
    held.released.set()
    proxy.rewrite = lambda request, status, body: (status, body)
    cache.clear()


def test_a_refresh_of_a_silent_vcenter_is_one_line_and_no_log_out(stall):
    moref = service.list_vms(q="web01").results[0].moref
    stall.stalling = True
    for read in (lambda: service.list_vms(refresh=True), lambda: service.get_vm(moref, refresh=True)):
        with pytest.raises(VCenterConnectionError, match=r"did not answer within 1 s") as failed:
            read()
        assert "\n" not in str(failed.value)
    assert "Logout" not in stall.seen  # the session is left, not logged out of a silent vCenter


def test_a_preflight_and_hyperctl_of_a_silent_vcenter_say_so(stall, viewer_api, proxy):
    stall.stalling = True
    response = viewer_api.post("/vms/preflight", {"vm_path": WEB01}, format="json")
    assert response.status_code == 200, response.content
    [finding] = response.json()["findings"]
    assert (finding["code"], finding["level"]) == ("vcenter-unreachable", "blocker")
    assert "did not answer within 1 s" in finding["reason"]

    response = viewer_api.get("/vms", {"refresh": "1"})
    assert response.status_code == 502 and "did not answer within 1 s" in response.json()["detail"]

    done = run_in_process("hyperctl", "vms", "list", "-refresh", env=dict(os.environ))
    assert done.returncode == 1 and "did not answer within 1 s" in done.stderr
    assert proxy.sim.password not in done.stderr + finding["reason"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_hyperexport_preflight_ends_on_a_signal_while_vcenter_is_silent(stall, proxy, tmp_path, signum):
    stall.stalling = True
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVC_")} | proxy.environment()
    process = subprocess.Popen(
        [HYPEREXPORT, "-preflight", "-vm", WEB01, "-output", str(tmp_path / "out")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The preflight's read is under way and held (a process that died first fails here,
        # rather than leaving the suite waiting for ever).
        assert stall.held.wait(60), f"the preflight read nothing (exit status {process.poll()})"
        process.send_signal(signum)
        # The vCenter stays silent until the process is gone: it must not wait for it (the
        # export's call timeout is 120 s, far past this safety limit).
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 1
    assert stderr.decode().strip().splitlines()[-1] == "error: preflight cancelled"
    assert not (tmp_path / "out").exists()


def test_remote_hyperctl_shows_the_daemons_word_on_a_silent_vcenter(stall, daemon):
    """The daemon waits on its vCenter longer than the CLI's usual silence limit (here 0.5 s,
    the vCenter's call timeout 1 s): for an inventory call the CLI waits for the daemon's 502."""
    from cli.backends import CLIError, RemoteBackend

    remote = RemoteBackend(daemon.url, daemon.token, timeout=0.5)
    stall.stalling = True
    for call in (
        lambda: remote.list_vms(refresh=True),
        lambda: remote.get_vm(WEB01, refresh=True),
    ):
        with pytest.raises(CLIError, match=r"did not answer within 1 s"):
            call()
    [finding] = remote.preflight({"vm_path": WEB01})["findings"]
    assert "did not answer within 1 s" in finding["reason"]


def test_hyperexport_preflight_and_dry_run_end_within_the_read_deadline(stall, proxy, tmp_path):
    """The checks alone go through the export pipeline: its session is bounded like the
    inventory's (HYPERSDK_INVENTORY_READ_SECONDS), not by the export's 120 s per call."""
    env = {**os.environ, **proxy.environment(), "HYPERSDK_INVENTORY_READ_SECONDS": "2"}
    env.pop("GOVC_INSECURE", None)
    stall.stalling = True
    for mode in ("-preflight", "-dry-run"):
        done = subprocess.run(
            [HYPEREXPORT, mode, "-vm", WEB01, "-output", str(tmp_path / mode)],
            env=env, capture_output=True, text=True, timeout=100,
        )  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        assert "within 2 s" in done.stdout + done.stderr, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
