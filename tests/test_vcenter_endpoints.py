"""A vCenter address that is no vCenter: a web server that answers something else, plain HTTP,
or a host that accepts TCP and never speaks (a tarpit). Every door says so in one line, without
the password, and none waits forever."""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from exports import job_runner, jobs
from exports.models import Job, VCenter
from exports.pipeline.connect import VCenterTarget, connect, vsphere_session
from exports.pipeline.errors import VCenterConnectionError
from inventory import cache, service
from inventory.preflight import preflight_spec
from tests.conftest import govc_environment
from tests.test_dashboard_views import HTMX, converter_form
from tests.test_hyperexport_cli import error_line, hyperexport
from tests.vcenter_proxy import self_signed_certificate

PASSWORD = "Never-Shown-42"
# What the test waits for a call that must end by itself: far above the product's timeouts
# (one second here), so only a call that hangs reaches it.
GENEROUS = 120


def _answering(body: bytes, status: int) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 - http.server's names

        def log_message(self, *args: object) -> None:
            pass

    return Handler


# kind -> (TLS?, status, body): a web server's 404, a web page where the version list should be,
# and a plain-HTTP server (the TLS hello gets an HTTP error back).
NOT_VSPHERE = {
    "https-404": (True, 404, b"<h1>Not Found</h1>"),
    "https-page": (True, 200, b"<html><body>welcome</body></html>"),
    "http": (False, 404, b"<h1>Not Found</h1>"),
}


@pytest.fixture(params=sorted(NOT_VSPHERE))
def not_vsphere(request, tmp_path) -> Iterator[int]:
    """The port of a web server that is no vSphere endpoint."""
    tls, status, body = NOT_VSPHERE[request.param]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _answering(body, status))
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self_signed_certificate(tmp_path))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def tarpit() -> Iterator[int]:
    """The port of a host that accepts TCP connections and never sends or reads a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def short_connect_timeout(monkeypatch, settings):
    monkeypatch.setenv("HYPERSDK_VCENTER_CONNECT_TIMEOUT", "1")
    settings.HYPERSDK_VCENTER_CONNECT_TIMEOUT = 1


def target_at(port: int) -> VCenterTarget:
    return VCenterTarget(host="127.0.0.1", port=port, username="root", password=PASSWORD, insecure=True)


def register(name: str, port: int) -> VCenter:
    vcenter = VCenter(name=name, url=f"https://127.0.0.1:{port}/sdk", username="root", insecure=True)
    vcenter.password = PASSWORD
    vcenter.save()
    return vcenter


def ends_within_generous(call) -> BaseException | None:
    """Run ``call`` in a thread; the exception it ended with (None: it returned). A call still
    running after GENEROUS seconds fails the test rather than hanging the suite."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GENEROUS)
    assert outcome, "the call never ended"
    return outcome[0]


def assert_one_line(message: str, *, says: str) -> None:
    assert says in message, message
    assert "\n" not in message and PASSWORD not in message and "Traceback" not in message


# ---- an endpoint that answers but is no vSphere -----------------------------------------------


def test_connecting_to_a_web_server_that_is_no_vsphere_is_one_line(not_vsphere):
    with pytest.raises(VCenterConnectionError) as failed:
        connect(target_at(not_vsphere))
    assert str(failed.value) == f"127.0.0.1:{not_vsphere} is down or is not a vSphere endpoint"


@pytest.mark.django_db
def test_the_inventory_of_an_admin_vcenter_that_is_no_vsphere_is_one_line(not_vsphere):
    register("dead", not_vsphere)
    cache.clear()
    for call in (lambda: service.list_vms(vcenter="dead"), lambda: service.get_vm("vm-1", vcenter="dead")):
        with pytest.raises(VCenterConnectionError) as failed:
            call()
        assert_one_line(str(failed.value), says="is down or is not a vSphere endpoint")


def test_the_api_answers_502_for_a_vcenter_that_is_no_vsphere(not_vsphere, viewer_api):
    register("dead", not_vsphere)
    cache.clear()
    for response in (
        viewer_api.get("/vms", {"vcenter": "dead"}),
        viewer_api.get("/vms/vm-1", {"vcenter": "dead"}),
    ):
        assert response.status_code == 502
        assert_one_line(response.json()["detail"], says="is down or is not a vSphere endpoint")


def test_a_preflight_against_a_vcenter_that_is_no_vsphere_is_a_blocker(
    not_vsphere, operator_api, export_root
):
    register("dead", not_vsphere)
    body = {"vm_path": "/dc/vm/prod/web01", "vcenter": "dead", "output_path": str(export_root / "x")}
    response = operator_api.post("/vms/preflight", body, format="json")
    assert response.status_code == 200
    (finding,) = response.json()["findings"]
    assert finding["code"] == "vcenter-unreachable" and finding["level"] == "blocker"
    assert PASSWORD not in response.content.decode()


def test_the_dashboard_says_it_cannot_read_a_vcenter_that_is_no_vsphere(not_vsphere, operator_browser):
    register("dead", not_vsphere)
    cache.clear()
    pages = (
        operator_browser.get("/ui/inventory/", {"vcenter": "dead"}),
        operator_browser.get("/ui/inventory/vm/", {"ref": "/dc/vm/prod/web01", "vcenter": "dead"}),
        operator_browser.get("/ui/inventory/suggest/", {"vm_path": "web", "vcenter": "dead"}, **HTMX),
        operator_browser.post("/ui/converter/preflight/", converter_form(vcenter="dead"), **HTMX),
    )
    for page in pages:
        assert page.status_code in (200, 502)
        text = page.content.decode()
        assert "is down or is not a vSphere endpoint" in text and PASSWORD not in text


@pytest.mark.django_db(transaction=True)
def test_a_job_on_a_vcenter_that_is_no_vsphere_fails_with_the_line(not_vsphere, export_root, redis_url):
    register("dead", not_vsphere)
    spec = {"vm_path": "/dc/vm/prod/web01", "vcenter": "dead", "output_path": str(export_root / "job")}
    job_id = jobs.submit_jobs([spec], origin=Job.Origin.API).job_ids[0]
    assert job_runner.run_job(job_id) == "failed"
    error = Job.objects.get(id=job_id).error
    assert_one_line(error, says=f"127.0.0.1:{not_vsphere} is down or is not a vSphere endpoint")


def test_hyperexport_to_a_vcenter_that_is_no_vsphere_exits_with_the_line(not_vsphere, tmp_path):
    env = {
        "GOVC_URL": f"https://127.0.0.1:{not_vsphere}/sdk",
        "GOVC_USERNAME": "root",
        "GOVC_PASSWORD": PASSWORD,
        "GOVC_INSECURE": "1",
    }
    done = hyperexport("-vm", "/dc/vm/prod/web01", "-output", str(tmp_path / "out"), env=env)
    assert done.returncode != 0
    assert_one_line(error_line(done), says="is down or is not a vSphere endpoint")
    assert PASSWORD not in done.stdout + done.stderr


# ---- a host that never answers --------------------------------------------------------------------


def test_connecting_to_a_tarpit_ends_with_one_line(tarpit, short_connect_timeout):
    failure = ends_within_generous(lambda: connect(target_at(tarpit)))
    assert isinstance(failure, VCenterConnectionError)
    assert str(failure) == f"cannot reach vCenter 127.0.0.1:{tarpit}: no answer within 1 s"


@pytest.mark.django_db(transaction=True)  # the call's thread reads the vCenter row
def test_the_inventory_of_a_tarpit_ends_with_one_line(tarpit, short_connect_timeout):
    register("tarpit", tarpit)
    cache.clear()
    failure = ends_within_generous(lambda: service.list_vms(vcenter="tarpit"))
    assert isinstance(failure, VCenterConnectionError)
    assert_one_line(str(failure), says="no answer within 1 s")


@pytest.mark.django_db(transaction=True)  # the call's thread reads the vCenter row
def test_a_preflight_against_a_tarpit_ends_with_a_blocker(tarpit, short_connect_timeout, export_root):
    register("tarpit", tarpit)
    spec = {"vm_path": "/dc/vm/prod/web01", "vcenter": "tarpit", "output_path": str(export_root / "x")}
    reports: list = []
    failure = ends_within_generous(lambda: reports.append(preflight_spec(spec, origin="api")))
    assert failure is None
    assert [finding.code for finding in reports[0].findings] == ["vcenter-unreachable"]


def test_hyperexport_to_a_tarpit_ends_with_one_line(tarpit, tmp_path):
    env = {
        "GOVC_URL": f"https://127.0.0.1:{tarpit}/sdk",
        "GOVC_USERNAME": "root",
        "GOVC_PASSWORD": PASSWORD,
        "GOVC_INSECURE": "1",
        "HYPERSDK_VCENTER_CONNECT_TIMEOUT": "1",
    }
    done = hyperexport("-vm", "/dc/vm/prod/web01", "-output", str(tmp_path / "out"), env=env)
    assert done.returncode != 0
    assert_one_line(error_line(done), says="no answer within 1 s")


# ---- a vCenter that answers too slowly for the whole read -----------------------------------------


@pytest.mark.vsphere
def test_a_session_past_its_deadline_ends_with_one_line(vsphere):
    target = VCenterTarget.from_env(govc_environment(vsphere))

    def read_while_paused() -> None:
        with vsphere_session(target, deadline=2) as si:
            si.CurrentTime()  # answered: the session works
            vsphere.pause()
            try:
                si.CurrentTime()  # never answered while paused: the deadline ends it
            finally:
                vsphere.resume()

    failure = ends_within_generous(read_while_paused)
    assert isinstance(failure, VCenterConnectionError)
    assert str(failure) == f"vCenter {target.netloc} did not finish answering within 2 s"
    with vsphere_session(target) as si:  # the simulator is fine afterwards
        assert si.CurrentTime()


@pytest.mark.vsphere
def test_after_log_in_a_call_waits_the_call_timeout_not_the_connect_timeout(vsphere):
    si = connect(VCenterTarget.from_env(govc_environment(vsphere)), timeout=1, call_timeout=GENEROUS)
    vsphere.pause()
    try:
        answered: list = []
        thread = threading.Thread(target=lambda: answered.append(si.CurrentTime()), daemon=True)
        thread.start()
        thread.join(3)  # three times the connect timeout: a call bounded by it would have failed
    finally:
        vsphere.resume()
    thread.join(GENEROUS)
    assert answered, "the call after log-in failed with the connect timeout"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HYPERSDK_VCENTER_CONNECT_TIMEOUT", "soon"),
        ("HYPERSDK_VCENTER_CONNECT_TIMEOUT", "0"),
        ("HYPERSDK_INVENTORY_READ_SECONDS", "-5"),
    ],
)
def test_a_bad_timeout_stops_start_up_naming_the_setting(name, value):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="hypersdk.settings") | {name: value}
    proc = subprocess.run(
        [sys.executable, "-c", "import hypersdk.settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and name in proc.stderr
