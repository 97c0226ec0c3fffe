"""Hostile input to the API: traversal and symlink tricks in output paths, oversized and
invalid bodies, fuzzed cron strings and VM paths. Each gets a clear 4xx naming the field, and
nothing is created: no Job or Schedule row, no beat task, no directory."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from exports.models import Job
from hypersdk.permissions import grant_role
from schedules import service
from schedules.models import Schedule, ScheduleRun

pytestmark = pytest.mark.django_db

# Derandomized: the same inputs every run; enough to cover each strategy's branches.
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def api(db, django_user_model) -> APIClient:
    """alice, an operator."""
    alice = django_user_model.objects.create_user("alice", password="alice-pass")
    grant_role(alice, "operator")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    return client


@pytest.fixture
def roots(tmp_path, settings) -> dict[str, Path]:
    """One export root, a directory beside it (outside), and a symlink from inside to outside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "loop").symlink_to(root / "loop")
    settings.HYPERSDK_EXPORT_ROOTS = [str(root)]
    settings.DATA_DIR = tmp_path / "data"
    return {"root": root, "outside": outside}


def tree(*dirs: Path) -> set[Path]:
    return {path for directory in dirs for path in directory.rglob("*")}


def submit(api: APIClient, spec: dict):
    return api.post("/jobs/submit", spec, format="json")


def create_schedule(api: APIClient, **fields):
    body = {"name": "nightly", "cron": "0 2 * * *", "vm_path": "/dc/vm/prod/web01", **fields}
    return api.post("/schedules", body, format="json")


def assert_nothing_created() -> None:
    assert not Job.objects.exists()
    assert not Schedule.objects.exists()
    assert not ScheduleRun.objects.exists()


# ---- output paths ------------------------------------------------------------------------

LONG_NAME = "x" * 256


def hostile_output_paths(root: Path, outside: Path) -> st.SearchStrategy[str]:
    climbs = st.integers(min_value=1, max_value=12).map(lambda n: "/".join([".."] * n))
    tails = st.sampled_from(["", "etc", "tmp/vm", outside.name, f"{outside.name}/web01"])
    traversal = st.builds(lambda up, tail: f"{root}/{up}/{tail}".rstrip("/"), climbs, tails)
    absolute = st.sampled_from(["/", "/etc", "/tmp/web01", str(outside), f"{outside}/web01", "/root/.ssh"])
    through_symlink = st.sampled_from(
        ["escape", "escape/web01", "escape/../outside", "loop/web01", "./escape//web01"]
    ).map(lambda rest: f"{root}/{rest}")
    with_nul = st.text(max_size=10).map(lambda text: f"{root}/web\x00{text}")
    with_control = st.sampled_from(["\n", "\r", "\x1b[2J", "\x7f"]).map(lambda c: f"{root}/web{c}01")
    too_long = st.sampled_from([f"{root}/{LONG_NAME}", f"{root}/" + "/".join(["d" * 200] * 25)])
    relative = st.sampled_from(["web01", "./web01", "../web01", f"{root.name}/web01"])
    return st.one_of(traversal, absolute, through_symlink, with_nul, with_control, too_long, relative)


def test_output_paths_outside_the_roots_are_refused_on_submit(api, roots):
    before = tree(roots["root"], roots["outside"])

    @FUZZ
    @given(path=hostile_output_paths(roots["root"], roots["outside"]))
    def check(path: str) -> None:
        response = submit(api, {"vm_path": "/dc/vm/prod/web01", "output_path": path})
        assert response.status_code == 400, (path, response.content)
        body = response.json()
        assert body["accepted"] == 0 and body["output_path"], body
        assert_nothing_created()

    check()
    assert tree(roots["root"], roots["outside"]) == before


def test_output_paths_outside_the_roots_are_refused_on_schedule_create(api, roots):
    before = tree(roots["root"], roots["outside"])

    @FUZZ
    @given(path=hostile_output_paths(roots["root"], roots["outside"]))
    def check(path: str) -> None:
        response = create_schedule(api, output_path=path)
        assert response.status_code == 400, (path, response.content)
        assert response.json()["output_path"]
        assert_nothing_created()

    check()
    assert tree(roots["root"], roots["outside"]) == before


def test_a_symlink_that_stays_inside_the_root_is_followed_to_its_target(api, roots):
    (roots["root"] / "archive").mkdir()
    (roots["root"] / "latest").symlink_to(roots["root"] / "archive")
    response = submit(api, {"vm_path": "/dc/vm/prod/web01", "output_path": f"{roots['root']}/latest/web01"})
    assert response.status_code == 202, response.content
    # Stored resolved: re-pointing the link later cannot move the export outside the root.
    assert Job.objects.get().output_path == str(roots["root"] / "archive" / "web01")


def test_the_messages_say_what_is_wrong(api, roots):
    cases = {
        f"{roots['root']}/../outside": "must be inside one of the export roots",
        f"{roots['root']}/escape/web01": "must be inside one of the export roots",
        "web01": "must be an absolute path",
        f"{roots['root']}/{LONG_NAME}": "output_path is too long",
        f"{roots['root']}/a\nb": "without NUL or other control characters",
        f"{roots['root']}/loop/web01": "output_path cannot be created: Too many levels of symbolic links",
    }
    for path, message in cases.items():
        body = submit(api, {"vm_path": "/dc/vm/prod/web01", "output_path": path}).json()
        assert message in body["output_path"][0], (path, body)
    # DRF's own check on every string field, before ours.
    body = submit(api, {"vm_path": "/dc/vm/prod/web01", "output_path": f"{roots['root']}/a\x00b"}).json()
    assert "Null characters are not allowed." in body["output_path"]
    assert_nothing_created()


# ---- bodies --------------------------------------------------------------------------------


def test_an_oversized_body_is_413_with_the_limit_and_creates_nothing(api, roots, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    specs = [{"vm_path": f"/dc/vm/prod/web{n:05}"} for n in range(3000)]  # about 100 KiB
    body = json.dumps({"jobs": specs})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api.post("/jobs/submit", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {
        "detail": "request body too large: the limit is 65536 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
    }
    response = api.post("/schedules", json.dumps({"name": "x" * 70_000}), content_type="application/json")
    assert response.status_code == 413
    assert_nothing_created()


def test_a_body_just_under_the_limit_is_accepted(api, roots, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    specs = [{"vm_path": f"/dc/vm/prod/web{n:05}"} for n in range(1500)]
    body = json.dumps({"jobs": specs})
    assert len(body) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api.post("/jobs/submit", body, content_type="application/json")
    assert response.status_code == 202 and response.json()["accepted"] == 1500


def test_the_default_limit_is_one_mebibyte(settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1 << 20


def invalid_utf8() -> st.SearchStrategy[bytes]:
    def undecodable(data: bytes) -> bool:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    prefixes = st.sampled_from([b"", b'{"vm_path": "/dc/vm/', b'{"jobs": [{"vm_path": "'])
    return st.builds(lambda prefix, data: prefix + data, prefixes, st.binary(min_size=1)).filter(undecodable)


@pytest.mark.parametrize("path", ["/jobs/submit", "/schedules", "/webhooks"])
def test_invalid_utf8_bodies_are_a_400_naming_the_encoding(api, roots, path):
    @FUZZ
    @given(body=invalid_utf8())
    @example(body=b'{"vm_path": "/dc/vm/prod/\xff\xfe"}')
    def check(body: bytes) -> None:
        response = api.post(path, body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert "not valid utf-8" in response.content.decode(), response.content
        assert_nothing_created()

    check()


@pytest.mark.parametrize("surrogate", ["\\ud800", "\\udfff", "web\\udc80"])
def test_lone_surrogates_are_a_400_not_a_database_error(api, roots, surrogate):
    body = '{"vm_path": "/dc/vm/prod/' + surrogate + '"}'
    response = api.post("/jobs/submit", body.encode(), content_type="application/json")
    assert response.status_code == 400
    assert "lone UTF-16 surrogate" in response.json()["detail"]
    assert_nothing_created()


def test_a_body_that_is_not_json_is_a_400_in_the_submit_shape(api):
    response = api.post("/jobs/submit", b"\x00", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 0 and "JSON parse error" in body["detail"]


def test_a_nul_in_a_path_is_a_404_and_in_a_filter_a_400(api):
    # PostgreSQL refuses a NUL in a lookup with an error: none may reach the database.
    assert api.get("/jobs/job-%00abc").status_code == 404
    assert api.get("/schedules/%00").status_code == 404
    assert api.get("/webhooks/%00/deliveries").status_code == 404
    response = api.get("/jobs/query", {"vm": "web\x0001"})
    assert response.status_code == 400 and response.json()["vm"]


def test_nul_and_control_characters_in_webhook_headers_are_a_400(api, settings):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    for headers in ({"X-A\x00": "v"}, {"X-A": "v\x00"}, {"X-A\n": "v"}, {"X-A": "v\r\nX-Evil: 1"}):
        body = {"url": "http://127.0.0.1:9/hook", "headers": headers}
        response = api.post("/webhooks", body, format="json")
        assert response.status_code == 400 and response.json()["headers"], (headers, response.content)


# ---- cron strings --------------------------------------------------------------------------

CRON_FIELD = st.text(alphabet="0123456789*/,-?LW#", min_size=1, max_size=6)
CRON_WORD = st.sampled_from(["MON", "sun", "JAN", "dec", "@daily", "@reboot", "@every", "*/0", "60", "-1"])
STRUCTURED_CRON = st.lists(st.one_of(CRON_FIELD, CRON_WORD), min_size=1, max_size=7).map(" ".join)
ANY_TEXT_CRON = st.text(max_size=40).filter(lambda text: "\x00" not in text)


def test_fuzzed_cron_strings_are_refused_naming_the_field_or_fire_at_their_next_run(api, roots):
    """Not the validator as its own oracle: an accepted expression must fire, through beat's
    tick, exactly at the NEXT RUN the API showed, and at no earlier instant."""

    @FUZZ
    @given(expression=st.one_of(STRUCTURED_CRON, ANY_TEXT_CRON))
    @example(expression="0 0 31 2 *")  # never fires: refused
    @example(expression="*/0 * * * *")
    @example(expression="0 0 * * 8")
    @example(expression="0 0 * * 7")
    @example(expression="0 0 L * *")
    @example(expression="0 0 * * 1#2")
    @example(expression="@reboot")
    @example(expression="@every 5m")
    @example(expression="9" * 200)
    def check(expression: str) -> None:
        response = create_schedule(api, cron=expression, output_path=str(roots["root"]))
        if response.status_code == 400:
            errors = response.json()
            assert list(errors) == ["cron"] and len(errors["cron"]) == 1, (expression, errors)
            assert "\n" not in errors["cron"][0]
            assert_nothing_created()
            return
        assert response.status_code == 201, (expression, response.content)
        schedule = response.json()
        slot = datetime.fromisoformat(schedule["next_run_at"])
        try:
            assert service.tick(slot - timedelta(seconds=1)) == [], expression
            runs = service.tick(slot + timedelta(seconds=5))
            assert [(run.slot, run.outcome) for run in runs] == [(slot, "started")], expression
        finally:
            Schedule.objects.all().delete()
            Job.objects.all().delete()

    check()


# ---- VM paths ------------------------------------------------------------------------------

VM_PATHS = st.one_of(
    st.text(max_size=60),
    st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=12), max_size=6).map("/".join),
    st.sampled_from(["/", "//", "/dc", "dc/", " /dc/ ", "/dc/vm/" + "v" * 201, "/dc/vm/a\nb", "/dc/vm/\x1b"]),
)


def test_fuzzed_vm_paths_are_accepted_whole_or_refused_with_a_vm_path_error(api, roots):
    @FUZZ
    @given(vm_path=VM_PATHS)
    def check(vm_path: str) -> None:
        response = submit(api, {"vm_path": vm_path})
        assert response.status_code in (202, 400), (vm_path, response.content)
        if response.status_code == 400:
            assert response.json()["vm_path"], response.json()
            assert_nothing_created()
            return
        job = Job.objects.get(id=response.json()["job_ids"][0])
        parts = [part for part in job.vm_path.split("/") if part]
        assert job.vm_path.startswith("/") and len(parts) >= 2
        # The default output directory is inside the data dir's export root, whatever the name.
        assert Path(job.output_path).parent == roots["root"].parent / "data" / "exports"
        assert os.path.basename(job.output_path).startswith(parts[-1])
        Job.objects.all().delete()

    check()


@pytest.mark.django_db(transaction=True)
def test_a_directory_swapped_for_a_symlink_after_submit_is_refused_by_the_worker(api, roots, redis_url):
    from exports import job_runner

    (roots["root"] / "archive").mkdir()
    response = submit(api, {"vm_path": "/dc/vm/prod/web01", "output_path": f"{roots['root']}/archive/web01"})
    assert response.status_code == 202, response.content
    job_id = response.json()["job_ids"][0]
    # Between submit and run, someone replaces the checked directory with a link out of the root.
    (roots["root"] / "archive").rmdir()
    (roots["root"] / "archive").symlink_to(roots["outside"])
    assert job_runner.run_job(job_id) == "failed"
    job = Job.objects.get(id=job_id)
    assert job.error.startswith("output path refused: output_path must be inside one of the export roots")
    assert list(roots["outside"].iterdir()) == []
