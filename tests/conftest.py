"""Shared fixtures: real VMDKs made with qemu-img and a real vSphere API (the simulator)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from exports.pipeline.download import DownloadedDisk
from exports.pipeline.files import sha256_file
from exports.pipeline.inventory import VMFacts
from exports.pipeline.manifest import build_manifest, write_manifest
from tests.vsphere_sim.harness import SimulatorUnavailable, VSphereSimulator, make_stream_vmdk

APP01 = "/dc/vm/prod/app01"


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 with 1,000 rounds: the same algorithm name, and the rounds are stored in each
    hash, so the daemon's own processes (daphne, hypervisord, workers) verify these hashes too."""

    iterations = 1_000


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """Hash the tests' passwords with 1,000 PBKDF2 rounds: the default ~1,000,000 cost ~0.33 s
    per hash (every log-in, every wrong password the throttle tests try). No test depends on
    the rounds; hashes made at full strength (bootstrap_admin's) still verify here."""
    from django.conf import global_settings
    from django.test.utils import override_settings

    others = [name for name in global_settings.PASSWORD_HASHERS if not name.endswith(".PBKDF2PasswordHasher")]
    with override_settings(PASSWORD_HASHERS=["tests.conftest.FastPBKDF2PasswordHasher", *others]):
        yield


def start_simulator(workdir: Path, **options) -> VSphereSimulator:
    """Start a vSphere test server; the suite fails loudly, never skips, if it cannot."""
    try:
        return VSphereSimulator(workdir, **options).start()
    except SimulatorUnavailable as exc:
        pytest.fail(f"the vSphere simulator is required and could not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def vsphere(tmp_path_factory) -> VSphereSimulator:
    sim = start_simulator(tmp_path_factory.mktemp("vsphere"))
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def app01_seeds(vsphere, tmp_path_factory) -> list[Path]:
    """app01 holds two disks of random data; their raw seeds sit beside the VMDKs."""
    seeds = tmp_path_factory.mktemp("app01-seeds")
    images = [
        make_stream_vmdk(seeds / "app01-disk1.vmdk", 24),
        make_stream_vmdk(seeds / "app01-disk2.vmdk", 12),
    ]
    vsphere.seed_disks(APP01, images)
    return images


@pytest.fixture(scope="session")
def slow_vsphere(tmp_path_factory):
    """A host serving 4 MiB/s with a 3 s lease timeout: db01's download outlives the lease twice."""
    sim = start_simulator(tmp_path_factory.mktemp("slow"), lease_timeout=3, nfc_rate=4 << 20)
    image = make_stream_vmdk(tmp_path_factory.mktemp("slow-seed") / "db01-disk1.vmdk", 24)
    sim.seed_disks("/dc/vm/prod/db01", [image])
    yield sim, image
    sim.stop()


def govc_environment(sim: VSphereSimulator) -> dict[str, str]:
    return {
        "GOVC_URL": sim.url,
        "GOVC_USERNAME": sim.username,
        "GOVC_PASSWORD": sim.password,
        "GOVC_TLS_CA_CERTS": str(sim.ca_file),
    }


@pytest.fixture
def govc_env(vsphere, monkeypatch) -> dict[str, str]:
    """GOVC_* pointing at the session's simulator, in this process's environment too."""
    env = govc_environment(vsphere)
    monkeypatch.delenv("GOVC_INSECURE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def exported_disks(tmp_path) -> list[DownloadedDisk]:
    """Two streamOptimized VMDKs of random data as if just downloaded (seeds kept as .raw)."""
    out = tmp_path / "export"
    disks = []
    for index, size_mib in enumerate((6, 3), start=1):
        vmdk = make_stream_vmdk(tmp_path / "seeds" / f"app01-disk{index}.vmdk", size_mib)
        dest = out / vmdk.name
        dest.parent.mkdir(exist_ok=True)
        os.link(vmdk, dest)
        disks.append(
            DownloadedDisk(f"200{index}", dest, dest.stat().st_size, sha256_file(dest), size_mib << 20)
        )
    return disks


@pytest.fixture
def write_test_manifest():
    def write(disks: list[DownloadedDisk], target: str = "qcow2", compressed: bool = False) -> dict:
        output_dir = disks[0].path.parent
        facts = VMFacts("app01", "vm-42", "dc", 2, 3000, "bios", "otherLinux64Guest", [])
        document = build_manifest(
            vm=facts,
            vm_path="/dc/vm/prod/app01",
            vcenter="vc.example",
            exported_at=datetime(2026, 1, 22, 10, 30, tzinfo=UTC),
            disks=disks,
            output_dir=output_dir,
            package_format="ovf",
            package_file="app01.ovf",
            compressed=compressed,
            target_format=target,
            verify_checksums=True,
        )
        write_manifest(output_dir, document)
        return document

    return write


def seed_of(path: Path | str) -> Path:
    """The raw image a test VMDK was made from."""
    name = Path(path).name.split(".")[0]
    return Path(path).parent.parent / "seeds" / f"{name}.raw"


# ---- the daemon's real components: Redis, a Celery worker, the API -------------------------


def reset_broker_pools() -> None:
    """Forget this process's connections to the broker and the channel layer's Redis.

    Celery caches its connection pool and its producer pool; both hold the old broker. kombu
    also keeps producer pools per broker URL in a registry of its own: one left there wraps the
    connection pool closed here, and every later send in this process would fail with "Acquire
    on closed pool"."""
    from channels.layers import channel_layers
    from kombu import pools as kombu_pools

    from hypersdk.celery import app

    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    kombu_pools.reset()
    channel_layers.backends.clear()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis for the broker and the Channels layer: $REDIS_URL, else an embedded one.

    The settings were computed at import, so this points them (and the Celery app) at it.
    """
    from django.conf import settings

    from hypersdk.celery import app
    from hypersdk.lib.embedded_redis import start_embedded_redis, stop_embedded_redis
    from hypersdk.settings import broker_url, channel_layer_settings

    process = None
    url = os.environ.get("REDIS_URL", "")
    if not url:
        process, url = start_embedded_redis(tmp_path_factory.mktemp("redis"))
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = broker_url(url)
    settings.CHANNEL_LAYERS = channel_layer_settings(url)
    app.conf.broker_url = broker_url(url)
    reset_broker_pools()  # pools made before this fixture (a test without Redis) keep the old broker
    yield url
    if process is not None:
        stop_embedded_redis(process)


@pytest_asyncio.fixture
async def close_open_websockets(monkeypatch):
    """Disconnect, at the end of an async test, every WebsocketCommunicator it left open.

    A consumer whose handshake was refused keeps reading the channel layer until its socket is
    disconnected. Cancelled only by the event loop's shutdown, that read was never interrupted
    and looped on Redis' blocking reads forever (before, a read timeout ended it by accident).

    A disconnect that comes while the consumer's read is still sending its command to Redis
    (a test that ends right after a refused handshake) is lost: on Python 3.11, the
    ``asyncio.wait_for`` around redis-py's send swallows a cancellation that races its end
    (bpo-42130, fixed in 3.12), so the read goes on. ``wait`` cancels it again when its timeout
    passes: 2 s, far more than a consumer needs to leave its groups, not 10 s per such test.
    """
    from channels.testing import WebsocketCommunicator

    opened: list[WebsocketCommunicator] = []
    original_init = WebsocketCommunicator.__init__

    def tracking_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(WebsocketCommunicator, "__init__", tracking_init)
    yield
    for communicator in opened:
        if not communicator.future.done():
            await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
            await communicator.wait(timeout=2)


@pytest.fixture(scope="session")
def test_database_url(django_db_setup, django_db_blocker) -> str:
    """The test database as a DATABASE_URL, for the worker and CLI processes the tests start."""
    from django.db import connections

    config = connections["default"].settings_dict
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return (
        f"postgres://{auth}{config.get('HOST') or '127.0.0.1'}:{config.get('PORT') or 5432}/{config['NAME']}"
    )


@pytest.fixture(scope="session")
def export_roots_base(tmp_path_factory) -> Path:
    """One export root for the whole session, so worker processes accept the tests' outputs."""
    return tmp_path_factory.mktemp("export-roots").resolve()


@pytest.fixture(scope="session")
def worker_environment(
    redis_url, test_database_url, vsphere, export_roots_base, tmp_path_factory
) -> dict[str, str]:
    """What a worker or CLI process needs to share this test session's database, Redis and vCenter."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVC_")}
    env.update(govc_environment(vsphere))
    env.update(
        DATABASE_URL=test_database_url,
        REDIS_URL=redis_url,
        HYPERSDK_SECRET_KEY=settings.SECRET_KEY,  # the same key decrypts stored vCenter passwords
        HYPERSDK_DATA_DIR=str(tmp_path_factory.mktemp("worker-data")),
        HYPERSDK_EXPORT_ROOTS=",".join([*settings.HYPERSDK_EXPORT_ROOTS, str(export_roots_base)]),
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    )
    return env


# Exports go to the default queue, webhook deliveries to their own (CELERY_TASK_ROUTES).
ALL_QUEUES = "celery,webhooks"


class WorkerProcess:
    """A real ``celery -A hypersdk worker`` subprocess; its output is kept in a file.

    It consumes both queues unless told otherwise, so one test worker runs exports and webhooks.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_file: Path,
        *,
        name: str,
        concurrency: int = 4,
        queues: str = ALL_QUEUES,
    ) -> None:
        self.env, self.log_file, self.name = env, log_file, name
        self.command = [
            sys.executable, "-m", "celery", "-A", "hypersdk", "worker", "-l", "info",
            "--concurrency", str(concurrency), "-n", f"{name}@%h", "--without-mingle", "--without-gossip",
            "--queues", queues,
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while " ready." not in self.log_file.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"celery worker did not start:\n{self.log_file.read_text()[-3000:]}", pytrace=False
                )
            time.sleep(0.2)
        return self

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool children), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def celery_worker(worker_environment, tmp_path_factory):
    """A worker for one test module: stopped after it, so it never claims another module's jobs."""
    worker = WorkerProcess(
        worker_environment,
        tmp_path_factory.mktemp("worker") / "worker.log",
        name=f"test-{uuid.uuid4().hex[:6]}",
    ).start()
    yield worker
    worker.stop()


@pytest.fixture
def export_root(request, export_roots_base, settings) -> Path:
    """A directory of this test's own inside the session's export root (workers accept it too)."""
    root = Path(tempfile.mkdtemp(prefix=f"{request.node.name[:40]}-", dir=export_roots_base))
    settings.HYPERSDK_EXPORT_ROOTS = [*settings.HYPERSDK_EXPORT_ROOTS, str(export_roots_base)]
    return root


@dataclass
class Daemon:
    url: str
    token: str

    @property
    def env(self) -> dict[str, str]:
        return {"HYPERSDK_DAEMON_URL": self.url, "HYPERSDK_API_TOKEN": self.token}


@pytest.fixture
def daemon(live_server, transactional_db, redis_url, django_user_model) -> Daemon:
    """The API served over HTTP (a live server on the test database) and an admin's token."""
    from api_tokens.service import issue_token

    user = django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-for-tests")
    return Daemon(url=live_server.url, token=issue_token(user))


# ---- people: one per role, their API clients and logged-in dashboard clients --------------


@pytest.fixture
def operator(db):
    """ "operator" (password "operator-pass"), in the operators group: may do everything but admin."""
    from tests.factories import make_user

    return make_user("operator", "operator")


@pytest.fixture
def viewer(db):
    """ "viewer" (password "viewer-pass"), in the viewers group: reads, never changes."""
    from tests.factories import make_user

    return make_user("viewer", "viewer")


@pytest.fixture
def no_role_user(db):
    """ "nobody" (password "nobody-pass"): an account in no group."""
    from tests.factories import make_user

    return make_user("nobody")


def persona_client(name: str, persona: str, kind: str):
    """A fixture ``name``: the ``persona`` fixture's REST client (``kind`` "api", token auth) or
    its logged-in dashboard client ("browser")."""

    # ``db`` named here, not only through the persona: the PostgreSQL pass selects the tests
    # whose fixtures reach the database, and getfixturevalue below is invisible to it.
    @pytest.fixture(name=name)
    def client(request, db):
        from tests import factories

        user = request.getfixturevalue(persona)
        return factories.api_client(user) if kind == "api" else factories.browser(user)

    return client


operator_api = persona_client("operator_api", "operator", "api")
viewer_api = persona_client("viewer_api", "viewer", "api")
no_role_api = persona_client("no_role_api", "no_role_user", "api")
operator_browser = persona_client("operator_browser", "operator", "browser")
viewer_browser = persona_client("viewer_browser", "viewer", "browser")


@pytest.fixture
def fresh_login_counters():
    """The log-in throttle's counters forgotten before and after the test."""
    from hypersdk.lib import login_throttle

    login_throttle.forget_all()
    yield
    login_throttle.forget_all()


@pytest.fixture
def receiver():
    """A webhook receiver on loopback (tests/webhook_receiver.py), stopped after the test."""
    from tests.webhook_receiver import Receiver

    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest_asyncio.fixture
async def close_connections_of_the_sync_thread():
    """Consumers reach the database from asgiref's thread; close that connection after each
    test so the test database can be dropped at the end (PostgreSQL refuses while in use)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all)()


# ---- the CLIs' environments ------------------------------------------------------------------

_OWN_ENV = ("GOVC_", "HYPERSDK_", "DATABASE_URL", "REDIS_URL")


def bare_env(tmp_path: Path) -> dict[str, str]:
    """A machine with no daemon settings at all: no database, no Redis, no vCenter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_ENV)}
    return env | {"HYPERSDK_DATA_DIR": str(tmp_path / "cli-data")}


@pytest.fixture(params=["remote", "local"])
def cli_env(request, tmp_path, export_root) -> dict[str, str]:
    """remote: only the daemon's URL and token. local: the daemon's machine (its database, Redis)."""
    if request.param == "remote":
        return bare_env(tmp_path) | request.getfixturevalue("daemon").env
    return dict(request.getfixturevalue("worker_environment"))


def wait_for(predicate, *, timeout: float = 120.0, interval: float = 0.2, message: str = "condition"):
    """Poll until ``predicate()`` is truthy; a generous deadline, never a performance assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}", pytrace=False)
        time.sleep(interval)


def register_vcenter(sim: VSphereSimulator, name: str):
    """A VCenter row for a simulator, its CA bundle stored as an operator would paste it."""
    from exports.models import VCenter

    vcenter = VCenter(name=name, url=sim.url, username=sim.username, ca_bundle=Path(sim.ca_file).read_text())
    vcenter.password = sim.password
    vcenter.save()
    return vcenter


BACKEND_FIXTURES = {
    "db",
    "transactional_db",
    "redis_url",
    "daemon",
    "celery_worker",
    "test_database_url",
    "worker_environment",
}


# What `make test` runs a second time on PostgreSQL + Redis: the modules, and single tests of
# other modules, whose behaviour can differ there (each with why). Of these, the tests that use
# the database or Redis are marked `backend`. Everything else reaches the same queries through
# another door (CLI output, templates, payload rendering, permissions, settings, file modes) and
# runs once, on SQLite.
ON_POSTGRESQL = {
    "test_job_scheduling": "claims, the per-vCenter limit and the reaper: conditional updates, locks",
    "test_output_ownership": "concurrent claims of one path: the advisory lock",
    "test_schedule_firing": "two ticks at once under row locks; zoned slots stored and compared",
    "test_schedules": "one job per slot under two beats, overlap, the upgrade migration",
    "test_schedule_names": "fuzzed unicode names against column limits and NUL",
    "test_hostile_input": "NUL, surrogates, huge integers, long strings: PostgreSQL refuses what SQLite keeps",
    "test_schemathesis": "every operation fuzzed down to the database",
    "test_jobs_api": "filters, ordering, pagination and JSON fields in SQL",
    "test_list_pages": "paged ordering and query counts",
    "test_webhooks": "delivery claims, failure streaks, index order",
    "test_webhooks_delivery": "deliveries through the Redis broker and a real worker",
    "test_retention": "cascading deletes and date arithmetic in SQL",
    "test_metrics": "counters kept by conditional upserts",
    "test_import_config": "idempotent get-or-create",
    "test_jobs_worker": "claim and finish through the Redis broker on a real worker",
    "test_worker_lost": "the reaper after a SIGKILLed worker's connection",
    "test_faults_infra": "Redis and hypervisord restarts mid-job with a real worker",
    "test_schedule_beat": "celery beat's DatabaseScheduler tables and the tick",
    "test_channel_layer": "the Channels layer on a Redis server",
    "test_job_stream": "a job stream relayed through the Redis channel layer",
    "test_dashboard_lookups": "ids and filters holding NUL, which PostgreSQL refuses in text",
}
ON_POSTGRESQL_TESTS = {
    "test_a_vcenter_holding_a_nul_is_unknown_not_a_500": "the vCenter's name looked up: NUL in text",
    "test_the_apis_vcenter_holding_a_nul_is_a_field_error": "the vCenter's name looked up: NUL in text",
    "test_the_apis_vm_with_a_vcenter_holding_a_nul_is_a_field_error": "the vCenter's name looked up",
    "test_a_sigkilled_worker_leaves_a_failed_job_and_nothing_that_looks_complete": "a killed connection",
    "test_plaintext_tokens_from_before_the_upgrade_are_hashed_and_keep_working": "a data migration",
    "test_the_upgrade_scrubs_plaintext_tokens_from_the_admin_history": "a data migration",
    "test_the_database_holds_no_usable_token": "what the token table stores",
    "test_existing_plain_webhooks_are_encrypted_by_the_migration": "a data migration",
    "test_existing_vcenter_url_credentials_move_into_the_encrypted_fields": "a data migration",
    "test_they_are_stored_encrypted": "what the encrypted columns store",
    "test_the_migration_creates_both_groups": "a data migration",
    "test_the_counters_live_in_redis_when_redis_url_is_set": "the login counters on a Redis server",
}


def runs_on_postgresql(item) -> bool:
    module = item.module.__name__.rsplit(".", 1)[-1]
    return module in ON_POSTGRESQL or item.originalname in ON_POSTGRESQL_TESTS


# `make test` spreads the SQLite pass over processes (pytest-xdist, `--dist loadfile`, which
# ``pytest_xdist_make_scheduler`` below hands out as runs of one file's tests). Each process has
# its own simulator, Redis, SQLite database and temporary directory, and runs its tests in the
# order one process would: pytest-django's (the tests on the database, then those that flush
# it, then those without it: a flush empties what the migrations put in), and, within each of
# those, the longest files first, so that the last ones handed out are short and no process
# ends long after the other. Measured with `make test PYTEST_ARGS=--durations=0` (a file's
# tests added up); a new long file belongs here too.
LONGEST_FIRST = [  # 20 s or more each, on a shared 2-core machine
    "test_docs",  # 95 s
    "test_faults_infra",  # 78 s
    "test_schemathesis",  # 60 s
    "test_hypervisord",  # 52 s
    "test_schedule_firing",  # 49 s
    "test_guest_boot",  # 43 s
    "test_faults_export",  # 43 s
    "test_dashboard_inventory_browser",  # 38 s
    "test_schedule_beat",  # 37 s
    "test_hyperctl",  # 34 s
    "test_export_e2e",  # 30 s
    "test_dashboard_progress_browser",  # 29 s
    "test_output_ownership",  # 26 s
    "test_cli_backends",  # 25 s
    "test_vm_shapes",  # 25 s
    "test_vcenter_endpoints",  # 25 s
    "test_hostile_input",  # 23 s
    "test_permissions",  # 23 s
    "test_hyperexport_daemon",  # 23 s
    "test_dashboard_browser_live",  # 22 s
    "test_dashboard_browser",  # 21 s
]


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


# Before pytest-django's own (tryfirst too, registered earlier): its stable sort by database use
# then keeps this order within each of its groups.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items) -> None:
    """Mark `backend` the tests that `make test` runs again on PostgreSQL + Redis; in a process
    of a pytest-xdist run, put the longest files first (``LONGEST_FIRST``)."""
    for item in items:
        params = item.name.removeprefix(item.originalname or "")
        if params.startswith("[") and not item.nodeid.endswith(params):
            # schemathesis names each operation's test "<function>[<operation>]", but on pytest 9
            # its id is the function's alone: pytest-xdist, which hands tests out by id, would
            # run one operation in place of all of them (checked: 2 tests reported, not 28).
            item._id = item._id.with_params(params[1:-1])
        if item.get_closest_marker("asyncio"):
            item.fixturenames.append("close_open_websockets")
        if not runs_on_postgresql(item):
            continue
        if BACKEND_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("django_db"):
            item.add_marker(pytest.mark.backend)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        ids = [item.nodeid for item in items]
        if len(set(ids)) != len(ids):
            twice = sorted({nodeid for nodeid in ids if ids.count(nodeid) > 1})
            raise pytest.UsageError(f"tests sharing an id would not all run in processes: {twice}")
        rank = {f"tests/{module}.py": place for place, module in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(file_of(item.nodeid), len(rank)))  # stable


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, a unit being a run of consecutive tests of one file in the order
    collected (a file whose tests pytest-django puts in two groups is two units), handed out in
    that order: no process runs a test on the database after one that flushed it."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LoadFileRunScheduling(LoadScopeScheduling):
        runs: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.runs is None:
                self.runs, run, previous = {}, 0, None
                for each in self.collection:
                    run += file_of(each) != previous
                    previous = file_of(each)
                    self.runs[each] = f"{previous}#{run}"
            return self.runs[nodeid]

    return LoadFileRunScheduling(config, log)


@pytest.fixture(autouse=True)
def every_ovf_read_independently(request):
    """After each test, read every .ovf it left in tmp_path/export_root with govmomi's ovf package.

    The descriptors come from our simulator: checking them only against the simulator that
    wrote them would prove nothing. ovfcheck (tests/vsphere_sim/ovfcheck) fails on a descriptor
    that does not parse or hold together; each disk's capacity must equal its file's virtual size.
    """
    from_server = request.node.get_closest_marker("vsphere") is not None or "vsphere" in request.fixturenames
    if not from_server or request.node.get_closest_marker("stand_in_ovf") is not None:
        yield  # only descriptors from the vSphere test server; unit tests use stand-in XML
        return
    roots = [
        request.getfixturevalue(name) for name in ("tmp_path", "export_root") if name in request.fixturenames
    ]
    yield
    descriptors = [p for root in roots for p in Path(root).rglob("*.ovf") if p.is_file()]
    if not descriptors:
        return
    from tests.vsphere_sim.harness import build_ovf_checker

    proc = subprocess.run([str(build_ovf_checker()), *map(str, descriptors)], capture_output=True, text=True)
    assert proc.returncode == 0, f"an .ovf written by this test is not valid OVF: {proc.stderr}"
    for line in proc.stdout.splitlines():
        described = json.loads(line)
        folder = Path(described["path"]).parent
        for disk in described["disks"]:
            image = folder / disk["file_href"]
            if disk["file_href"] and image.is_file():
                with image.open("rb") as head:
                    if head.read(2) == b"\x1f\x8b":  # ovf:compression="gzip" (an -compress OVA's member)
                        plain = image.with_name(f"{image.name}.ungzipped")
                        with gzip.open(image) as source, plain.open("wb") as sink:
                            shutil.copyfileobj(source, sink)
                        image = plain
                info = subprocess.run(
                    ["qemu-img", "info", "--output=json", str(image)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                assert int(disk["capacity_bytes"]) == json.loads(info.stdout)["virtual-size"], (
                    f"{described['path']}: {disk['disk_id']} capacity differs from {image.name}'s virtual size"
                )


def fire_at(schedule_id: str, moment: datetime):
    """Beat's tick at ``moment`` (the schedule's cursor put just before it, as if it had
    been ticking all along); the run it made for the schedule."""
    from schedules import firing
    from schedules.models import Schedule

    Schedule.objects.filter(id=schedule_id).update(fired_through=moment - timedelta(minutes=1))
    runs = [run for run in firing.tick(moment) if run.schedule_id == schedule_id]
    return runs[-1] if runs else None
