"""Hostile input to the API: traversal and symlink tricks in output paths, oversized and
invalid bodies, fuzzed cron strings and VM paths. Each gets a clear 4xx naming the field, and
nothing is created: no Job or Schedule row, no beat task, no directory."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from exports.models import Job
from exports.pipeline.names import file_stem
from hypersdk.lib.permissions import grant_role
from schedules import firing
from schedules.models import Schedule, ScheduleRun
from tests.fuzzing import FUZZ

pytestmark = pytest.mark.django_db


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


def submit(operator_api: APIClient, spec: dict):
    return operator_api.post("/jobs/submit", spec, format="json")


def create_schedule(operator_api: APIClient, **fields):
    body = {"name": "nightly", "cron": "0 2 * * *", "vm_path": "/dc/vm/prod/web01", **fields}
    return operator_api.post("/schedules", body, format="json")


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


def test_output_paths_outside_the_roots_are_refused_on_submit(operator_api, roots):
    before = tree(roots["root"], roots["outside"])

    @FUZZ
    @given(path=hostile_output_paths(roots["root"], roots["outside"]))
    def check(path: str) -> None:
        response = submit(operator_api, {"vm_path": "/dc/vm/prod/web01", "output_path": path})
        assert response.status_code == 400, (path, response.content)
        body = response.json()
        assert body["accepted"] == 0 and body["output_path"], body
        assert_nothing_created()

    check()
    assert tree(roots["root"], roots["outside"]) == before


def test_output_paths_outside_the_roots_are_refused_on_schedule_create(operator_api, roots):
    before = tree(roots["root"], roots["outside"])

    @FUZZ
    @given(path=hostile_output_paths(roots["root"], roots["outside"]))
    def check(path: str) -> None:
        response = create_schedule(operator_api, output_path=path)
        assert response.status_code == 400, (path, response.content)
        assert response.json()["output_path"]
        assert_nothing_created()

    check()
    assert tree(roots["root"], roots["outside"]) == before


def test_a_symlink_that_stays_inside_the_root_is_followed_to_its_target(operator_api, roots):
    (roots["root"] / "archive").mkdir()
    (roots["root"] / "latest").symlink_to(roots["root"] / "archive")
    response = submit(
        operator_api, {"vm_path": "/dc/vm/prod/web01", "output_path": f"{roots['root']}/latest/web01"}
    )
    assert response.status_code == 202, response.content
    # Stored resolved: re-pointing the link later cannot move the export outside the root.
    assert Job.objects.get().output_path == str(roots["root"] / "archive" / "web01")


def test_the_messages_say_what_is_wrong(operator_api, roots):
    cases = {
        f"{roots['root']}/../outside": "must be inside one of the export roots",
        f"{roots['root']}/escape/web01": "must be inside one of the export roots",
        "web01": "must be an absolute path",
        f"{roots['root']}/{LONG_NAME}": "output_path is too long",
        f"{roots['root']}/a\nb": "without NUL or other control characters",
        f"{roots['root']}/loop/web01": "output_path cannot be created: Too many levels of symbolic links",
    }
    for path, message in cases.items():
        body = submit(operator_api, {"vm_path": "/dc/vm/prod/web01", "output_path": path}).json()
        assert message in body["output_path"][0], (path, body)
    # DRF's own check on every string field, before ours.
    body = submit(
        operator_api, {"vm_path": "/dc/vm/prod/web01", "output_path": f"{roots['root']}/a\x00b"}
    ).json()
    assert "Null characters are not allowed." in body["output_path"]
    assert_nothing_created()


# ---- bodies --------------------------------------------------------------------------------


def test_an_oversized_body_is_413_with_the_limit_and_creates_nothing(operator_api, roots, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    specs = [{"vm_path": f"/dc/vm/prod/web{n:05}"} for n in range(3000)]  # about 100 KiB
    body = json.dumps({"jobs": specs})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = operator_api.post("/jobs/submit", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {
        "detail": "request body too large: the limit is 65536 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
    }
    response = operator_api.post(
        "/schedules", json.dumps({"name": "x" * 70_000}), content_type="application/json"
    )
    assert response.status_code == 413
    assert_nothing_created()


def test_a_body_just_under_the_limit_is_accepted(operator_api, roots, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    specs = [{"vm_path": f"/dc/vm/prod/web{n:05}"} for n in range(1500)]
    body = json.dumps({"jobs": specs})
    assert len(body) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = operator_api.post("/jobs/submit", body, content_type="application/json")
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
def test_invalid_utf8_bodies_are_a_400_naming_the_encoding(operator_api, roots, path):
    @FUZZ
    @given(body=invalid_utf8())
    @example(body=b'{"vm_path": "/dc/vm/prod/\xff\xfe"}')
    def check(body: bytes) -> None:
        response = operator_api.post(path, body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert "not valid utf-8" in response.content.decode(), response.content
        assert_nothing_created()

    check()


@pytest.mark.parametrize("surrogate", ["\\ud800", "\\udfff", "web\\udc80"])
def test_lone_surrogates_are_a_400_not_a_database_error(operator_api, roots, surrogate):
    body = '{"vm_path": "/dc/vm/prod/' + surrogate + '"}'
    response = operator_api.post("/jobs/submit", body.encode(), content_type="application/json")
    assert response.status_code == 400
    assert "lone UTF-16 surrogate" in response.json()["detail"]
    assert_nothing_created()


def test_a_body_that_is_not_json_is_a_400_in_the_submit_shape(operator_api):
    response = operator_api.post("/jobs/submit", b"\x00", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 0 and "JSON parse error" in body["detail"]


def test_a_nul_in_a_path_is_a_404_and_in_a_filter_a_400(operator_api):
    # PostgreSQL refuses a NUL in a lookup with an error: none may reach the database.
    assert operator_api.get("/jobs/job-%00abc").status_code == 404
    assert operator_api.get("/schedules/%00").status_code == 404
    assert operator_api.get("/webhooks/%00/deliveries").status_code == 404
    response = operator_api.get("/jobs/query", {"vm": "web\x0001"})
    assert response.status_code == 400 and response.json()["vm"]


def test_nul_and_control_characters_in_webhook_headers_are_a_400(operator_api, settings):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    for headers in ({"X-A\x00": "v"}, {"X-A": "v\x00"}, {"X-A\n": "v"}, {"X-A": "v\r\nX-Evil: 1"}):
        body = {"url": "http://127.0.0.1:9/hook", "headers": headers}
        response = operator_api.post("/webhooks", body, format="json")
        assert response.status_code == 400 and response.json()["headers"], (headers, response.content)


# ---- cron strings --------------------------------------------------------------------------

CRON_FIELD = st.text(alphabet="0123456789*/,-?LW#", min_size=1, max_size=6)
CRON_WORD = st.sampled_from(["MON", "sun", "JAN", "dec", "@daily", "@reboot", "@every", "*/0", "60", "-1"])
STRUCTURED_CRON = st.lists(st.one_of(CRON_FIELD, CRON_WORD), min_size=1, max_size=7).map(" ".join)
ANY_TEXT_CRON = st.text(max_size=40).filter(lambda text: "\x00" not in text)


def test_fuzzed_cron_strings_are_refused_naming_the_field_or_fire_at_their_next_run(operator_api, roots):
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
        response = create_schedule(operator_api, cron=expression, output_path=str(roots["root"]))
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
            assert firing.tick(slot - timedelta(seconds=1)) == [], expression
            runs = firing.tick(slot + timedelta(seconds=5))
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


def test_fuzzed_vm_paths_are_accepted_whole_or_refused_with_a_vm_path_error(operator_api, roots):
    @FUZZ
    @given(vm_path=VM_PATHS)
    def check(vm_path: str) -> None:
        response = submit(operator_api, {"vm_path": vm_path})
        assert response.status_code in (202, 400), (vm_path, response.content)
        if response.status_code == 400:
            assert response.json()["vm_path"], response.json()
            assert_nothing_created()
            return
        job = Job.objects.get(id=response.json()["job_ids"][0])
        parts = [part for part in job.vm_path.split("/") if part]
        assert job.vm_path.startswith("/") and len(parts) >= 2
        # The default output directory is inside the export root (the data dir is outside it),
        # whatever the name, and its name fits a file name.
        assert Path(job.output_path).parent == roots["root"]
        assert os.path.basename(job.output_path).startswith(file_stem(parts[-1]))
        assert len(os.fsencode(os.path.basename(job.output_path))) <= 255
        Job.objects.all().delete()

    check()


@pytest.mark.django_db(transaction=True)
def test_a_directory_swapped_for_a_symlink_after_submit_is_refused_by_the_worker(
    operator_api, roots, redis_url
):
    from exports import job_runner

    (roots["root"] / "archive").mkdir()
    response = submit(
        operator_api, {"vm_path": "/dc/vm/prod/web01", "output_path": f"{roots['root']}/archive/web01"}
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["job_ids"][0]
    # Between submit and run, someone replaces the checked directory with a link out of the root.
    (roots["root"] / "archive").rmdir()
    (roots["root"] / "archive").symlink_to(roots["outside"])
    assert job_runner.run_job(job_id) == "failed"
    job = Job.objects.get(id=job_id)
    assert job.error.startswith("output path refused: output_path must be inside one of the export roots")
    assert list(roots["outside"].iterdir()) == []


# ---- every operation of the API's own schema: nesting, integers, path parameters ------------
#
# The operations, their path parameters, their integer query parameters and body fields are
# read from /api/schema/ itself: an endpoint or a numeric field added later is covered too.

HUGE_INTEGERS = [10**30, 2**63, 2**63 - 1, 2**31, -(2**63) - 1, -(10**30)]
ASCII_DIGITS = set("0123456789")
OTHER_DIGITS = st.text(
    alphabet=st.characters(categories=["Nd", "No", "Nl"]).filter(lambda char: char not in ASCII_DIGITS),
    min_size=1,
    max_size=12,
)


def api_schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


SCHEMA = None


def operations() -> list[tuple[str, str, dict]]:
    global SCHEMA
    if SCHEMA is None:
        SCHEMA = api_schema()
    return [
        (method.upper(), path, operation)
        for path, methods in SCHEMA["paths"].items()
        for method, operation in methods.items()
    ]


def body_schema(operation: dict) -> dict | None:
    ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if ref is None:
        return None
    return SCHEMA["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]


def integer_body_fields() -> list[tuple[str, str, str]]:
    return [
        (method, path, name)
        for method, path, operation in operations()
        if (schema := body_schema(operation))
        for name, field in schema.get("properties", {}).items()
        if field.get("type") == "integer" and not field.get("readOnly")
    ]


def integer_query_parameters() -> list[tuple[str, str, str]]:
    return [
        (method, path, parameter["name"])
        for method, path, operation in operations()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter.get("schema", {}).get("type") == "integer"
    ]


@pytest.fixture
def existing(operator_api, roots, settings) -> dict[str, str]:
    """One of each thing a path parameter names, so a request reaches the code behind it."""
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    job = submit(operator_api, {"vm_path": "/dc/vm/prod/web01"}).json()["job_ids"][0]
    schedule = create_schedule(operator_api, name="existing").json()["id"]
    webhook = operator_api.post("/webhooks", {"url": "http://127.0.0.1:9/hook"}, format="json").json()["id"]
    from webhooks.models import WebhookDelivery

    delivery = WebhookDelivery.objects.create(webhook_id=webhook, event="job.failed", body="{}").id
    return {"job_id": job, "schedule_id": schedule, "index": webhook, "delivery_id": delivery}


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


# A valid body for each operation that takes one; each test changes one field of it.
BODIES = {
    ("POST", "/jobs/submit"): {"vm_path": "/dc/vm/prod/web01"},
    ("POST", "/schedules"): {"name": "fresh", "cron": "0 2 * * *", "vm_path": "/dc/vm/prod/web01"},
    ("PUT", "/schedules/{schedule_id}"): {
        "name": "existing",
        "cron": "0 2 * * *",
        "vm_path": "/dc/vm/prod/web01",
    },
    ("PATCH", "/schedules/{schedule_id}"): {},
    ("POST", "/webhooks"): {"url": "http://127.0.0.1:9/other"},
    ("POST", "/vms/preflight"): {"vm_path": "/dc/vm/prod/web01"},
}


def test_every_operation_with_a_body_is_in_bodies():
    assert {(method, path) for method, path, op in operations() if body_schema(op)} == set(BODIES)


def test_there_are_numeric_fields_to_check():
    # retention, parallel, conversion_timeout in bodies; page, page_size, tail in queries.
    assert {name for *_, name in integer_body_fields()} >= {"retention", "parallel", "conversion_timeout"}
    assert {name for *_, name in integer_query_parameters()} == {"page", "page_size", "tail"}


@pytest.mark.parametrize("value", HUGE_INTEGERS)
def test_a_huge_integer_in_any_numeric_body_field_is_a_400_on_that_field(operator_api, existing, value):
    for method, path, name in integer_body_fields():
        body = {**BODIES[(method, path)], name: value}
        response = operator_api.generic(
            method, fill(path, existing), json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 400, (method, path, name, value, response.content)
        assert response.json()[name], (method, path, response.json())
    assert Schedule.objects.count() == 1 and Job.objects.count() == 1


def test_a_huge_retention_is_a_field_error_not_an_overflow(operator_api, roots):
    response = create_schedule(operator_api, retention=10**30)
    assert response.status_code == 400
    assert response.json() == {"retention": ["Ensure this value is less than or equal to 100000."]}
    assert create_schedule(operator_api, retention=100_000).status_code == 201


@pytest.mark.parametrize("value", [*HUGE_INTEGERS, "9" * 5000])
def test_a_huge_integer_in_any_numeric_query_parameter_is_a_400_on_it(operator_api, existing, value):
    for method, path, name in integer_query_parameters():
        response = operator_api.generic(method, fill(path, existing) + f"?{name}={value}")
        assert response.status_code == 400, (method, path, name, response.content)
        assert response.json()[name], (method, path, response.json())


def test_fuzzed_integers_in_numeric_fields_are_stored_or_refused_on_the_field(operator_api, existing):
    fields = integer_body_fields()

    @FUZZ
    @given(
        index=st.integers(min_value=0, max_value=len(fields) - 1),
        value=st.one_of(st.integers(), st.sampled_from(HUGE_INTEGERS)),
    )
    def check(index: int, value: int) -> None:
        method, path, name = fields[index]
        body = {**BODIES[(method, path)], name: value}
        response = operator_api.generic(
            method, fill(path, existing), json.dumps(body), content_type="application/json"
        )
        assert response.status_code in (200, 201, 202, 400), (method, path, name, value, response.content)
        if response.status_code == 400:
            assert response.json()[name], response.json()
        assert Schedule.objects.filter(id=existing["schedule_id"]).exists(), (method, path, name, value)
        Schedule.objects.exclude(name="existing").delete()

    for index in range(len(fields)):  # each field at least once with a value beyond any column
        check = example(index=index, value=2**64)(check)
    check()


NESTINGS = {
    "arrays": "[" * 100_000,
    "objects": '{"a":' * 100_000,
    "closed arrays": "[" * 5_000 + "]" * 5_000,
    "in a field": '{"vm_path": ' + "[" * 100_000,
    "just over": '{"vm_path": ' + "[" * 40 + "]" * 40 + "}",
}


@pytest.mark.parametrize("body", NESTINGS.values(), ids=NESTINGS.keys())
def test_deeply_nested_json_is_a_400_on_every_operation_that_takes_a_body(operator_api, existing, body):
    for method, path, operation in operations():
        if method == "GET":  # a body on a GET is never read
            continue
        response = operator_api.generic(method, fill(path, existing), body, content_type="application/json")
        assert response.status_code < 500, (method, path, response.content)
        if body_schema(operation):
            assert response.status_code == 400, (method, path, response.content)
            assert "nested deeper than 32 levels" in response.json()["detail"], response.json()
    assert not Schedule.objects.exclude(name="existing").exists()


def test_fuzzed_nesting_is_parsed_or_refused_never_a_500(operator_api, existing):
    def nest(depth: int, kinds: list[bool]) -> str:
        opening = "".join("[" if kind else '{"k":' for kind in (kinds * depth)[:depth])
        closing = "".join("]" if kind else "}" for kind in reversed((kinds * depth)[:depth]))
        return f'{{"vm_path": {opening}1{closing}}}'

    @FUZZ
    @given(
        depth=st.integers(min_value=0, max_value=3000), kinds=st.lists(st.booleans(), min_size=1, max_size=5)
    )
    @example(depth=31, kinds=[True])
    @example(depth=32, kinds=[True])
    def check(depth: int, kinds: list[bool]) -> None:
        response = operator_api.post("/jobs/submit", nest(depth, kinds), content_type="application/json")
        assert response.status_code == 400, response.content
        if depth >= 32:  # the object around vm_path is the first level
            assert "nested deeper than 32 levels" in response.json()["detail"]
        else:
            assert response.json()["vm_path"]  # parsed, then refused as a VM path

    check()


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_numbers_that_are_not_json_are_a_400(operator_api, roots, text):
    response = operator_api.post(
        "/schedules", f'{{"name": "x", "retention": {text}}}', content_type="application/json"
    )
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


def test_deep_json_in_an_admin_json_field_is_a_form_error(admin_client, roots):
    response = admin_client.post(
        "/admin/schedules/schedule/add/",
        {
            "name": "deep",
            "cron": "0 2 * * *",
            "timezone": "UTC",
            "job_template": "[" * 100_000,
            "overlap": "skip",
        },
    )
    assert response.status_code == 200 and "Enter a valid JSON." in response.content.decode()
    assert_nothing_created()


def url_patterns_with_parameters() -> list[str]:
    """Every route of the daemon (API, dashboard, admin) that takes a path parameter."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and "<" in route and not route.startswith("^"):
                found.append(route)

    walk(get_resolver().url_patterns, "/")
    return found


def test_non_ascii_digits_in_any_path_parameter_are_a_4xx_never_a_500(operator_api, admin_client, existing):
    routes = [route for route in url_patterns_with_parameters() if not route.startswith("/admin/")]
    assert {"/webhooks/<str:index>", "/ui/webhooks/<str:webhook_id>/<str:action>/"} <= set(routes)

    @settings(FUZZ, max_examples=20)
    @given(value=OTHER_DIGITS)
    @example(value="٣")
    @example(value="²")
    @example(value="٠")
    @example(value="\U0001d7ce")  # MATHEMATICAL BOLD DIGIT ZERO
    def check(value: str) -> None:
        for route in routes:
            path = re.sub(r"<(?:\w+:)?\w+>", value, route)
            dashboard = route.startswith("/ui/")
            for method in ("get", "post", "put", "patch", "delete"):
                response = getattr(admin_client if dashboard else operator_api, method)(path)
                assert response.status_code in (400, 404, 405), (method, path, response.status_code)

    check()


@pytest.mark.parametrize("value", ["٣", "²", "\U0001d7ce"])
def test_non_ascii_digits_in_admin_paths_never_give_a_500(admin_client, existing, value):
    routes = [route for route in url_patterns_with_parameters() if route.startswith("/admin/")]
    for route in routes:
        path = re.sub(r"<(?:\w+:)?\w+>", value, route)
        response = admin_client.get(path)
        assert response.status_code in (200, 302, 404), (path, response.status_code)


@pytest.mark.parametrize("ref", ["٣", "²", "٠", "𝟎", "1²"])
def test_a_webhook_index_in_other_digits_is_a_404_naming_it(operator_api, existing, ref):
    response = operator_api.get(f"/webhooks/{ref}")
    assert response.status_code == 404 and response.json() == {"detail": f"webhook not found: {ref}"}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_deep_json_sent_on_a_job_stream_is_ignored_and_the_socket_stays(redis_url, django_user_model):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.db import connections
    from django.test import Client

    from exports import jobs
    from hypersdk.asgi import application

    @sync_to_async
    def login() -> bytes:
        user = django_user_model.objects.create_user("operator", password="operator-pass")
        grant_role(user, "operator")
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    headers = [
        (b"origin", b"http://localhost:8080"),
        (b"host", b"localhost:8080"),
        (b"cookie", await login()),
    ]
    socket = WebsocketCommunicator(application, "/ws/jobs/", headers=headers)
    try:
        connected, _ = await socket.connect()
        assert connected
        await socket.send_to(text_data="[" * 100_000)
        await socket.send_to(text_data="not json")
        job_id = (await sync_to_async(jobs.submit_jobs)([{"vm_path": "/dc/vm/prod/web01"}])).job_ids[0]
        await sync_to_async(jobs.cancel_job)(job_id)
        message = await socket.receive_json_from(timeout=10)
        assert message["type"] == "job.status" and message["job_id"] == job_id
        await socket.disconnect()
    finally:
        await sync_to_async(connections.close_all)()


def test_a_nul_in_a_vcenter_name_is_a_field_error_not_a_database_error(operator_api, roots):
    """The vCenter is looked up by name: PostgreSQL refuses a NUL there with an error (a 500)."""
    response = submit(operator_api, {"vm_path": "/dc/vm/prod/web01", "vcenter": "a\x00b"})
    assert response.status_code == 400
    assert "does not exist" in json.dumps(response.json())
    response = create_schedule(operator_api, vcenter="\x00")
    assert response.status_code == 400 and response.json()["vcenter"]
    assert_nothing_created()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/exports/job/?status__exact=%00",
        "/admin/exports/job/?pk=%00",
        "/admin/webhooks/webhookdelivery/?webhook__id__exact=%00",
        "/admin/schedules/schedule/?pk=%00",
    ],
)
def test_a_nul_in_an_admin_changelist_filter_is_a_400(client, url):
    from tests.factories import make_user

    client.force_login(make_user("root", superuser=True))
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
