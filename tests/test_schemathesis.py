"""schemathesis against the daemon's own OpenAPI schema (/api/schema/), as an operator.

Every operation gets generated requests, valid and invalid; each response must be no 5xx, a
documented status code with a documented content type, and a body that matches the schema.
The WSGI app is called in-process on the test database; exports only go to tmp dirs and no
worker runs, so jobs stay pending. Derandomized: the same cases every run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from api_tokens.service import issue_token
from exports.models import Job
from hypersdk.lib.permissions import grant_role
from hypersdk.wsgi import application
from schedules.models import Schedule
from tests.conftest import govc_environment

pytestmark = pytest.mark.django_db

# Enough for every parameter and body field to vary, small enough for a couple of minutes on
# two cores (the coverage phase adds its own boundary cases on top).
EXAMPLES = 25


# These operations check values against the server's state as well as their shape: the vCenter
# must exist, output paths must be in this host's export roots, a VM path needs a datacenter and
# a name, cron strings must parse, schedule names be unique, webhook URLs public. A schema cannot
# say that, so a schema-valid body may rightly get a 400 with field errors; every other check
# (no 5xx, documented status, content type and body) still applies to them.
VALIDATED_AGAINST_SERVER_STATE = [
    ("POST", "^/jobs/submit$"),
    ("POST", "^/schedules$"),
    ("PUT", "^/schedules/"),
    ("PATCH", "^/schedules/"),
    ("POST", "^/webhooks$"),
    ("GET", "^/vms"),  # the vcenter named must exist; a VM path must name a VM
]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 7,
        "operations": [
            {
                "include-method": method,
                "include-path-regex": path,
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404", "409"]
                    }
                },
            }
            for method, path in VALIDATED_AGAINST_SERVER_STATE
        ],
    }
)


def served_schema() -> dict:
    """What ``/api/schema/`` serves, built by the same generator: the endpoint needs a log-in,
    and there is no database (no account) at collection (test_the_served_schema_is_the_one_tested)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


# Built once at collection; the cases are sent to the app itself.
schema = schemathesis.openapi.from_dict(served_schema(), config=CONFIG)
schema.app = application

# Beyond what the schema says, each generated case may also carry what has given 500s before:
# digits other than ASCII in every path parameter ("/webhooks/٣"), integers far outside any
# column in every numeric body field, and bodies nested deeper than the parser takes.
OTHER_DIGITS = st.text(
    alphabet=st.characters(categories=["Nd", "No", "Nl"]).filter(lambda char: not ("0" <= char <= "9")),
    min_size=1,
    max_size=8,
)
HUGE_INTEGERS = st.sampled_from([10**30, 2**63, 2**31, -(2**63) - 1])


@schema.hook
def flatmap_path_parameters(context, path_parameters: dict) -> st.SearchStrategy:
    if not path_parameters:
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters), st.fixed_dictionaries({name: OTHER_DIGITS for name in path_parameters})
    )


@schema.hook
def flatmap_body(context, body) -> st.SearchStrategy:
    if not isinstance(body, dict):
        return st.just(body)
    numeric = sorted(
        name for name, value in body.items() if isinstance(value, int) and not isinstance(value, bool)
    )
    variants = [
        st.just(body),
        st.integers(min_value=33, max_value=200).map(lambda depth: nested(body, depth)),
    ]
    if numeric:
        variants.append(
            st.builds(lambda name, huge: {**body, name: huge}, st.sampled_from(numeric), HUGE_INTEGERS)
        )
    return st.one_of(variants)


def nested(body: dict, depth: int) -> dict:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return {**body, "vm_path": value}


@pytest.fixture
def sandbox(db, redis_url, settings, tmp_path) -> Path:
    """Export roots and the data dir in tmp; webhooks fail fast instead of waiting on the net."""
    data_dir = tmp_path / "data"
    settings.DATA_DIR = data_dir
    settings.HYPERSDK_EXPORT_ROOTS = [str(tmp_path / "exports"), str(data_dir / "exports")]
    settings.HYPERSDK_WEBHOOK_TIMEOUT = 1
    # As Django's test client does: the end of a request must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield tmp_path
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def alice_token(db, django_user_model) -> str:
    """alice, an operator: may call every operation."""
    alice, _ = django_user_model.objects.get_or_create(username="alice")
    grant_role(alice, "operator")
    return issue_token(alice)


def test_the_served_schema_is_the_one_tested(alice_token):
    client = APIClient()
    assert client.get("/api/schema/", HTTP_ACCEPT="application/json").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {alice_token}")
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert json.loads(response.content) == served_schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,  # no replay of earlier runs' examples: every run, CI's included, is the same
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, sandbox, alice_token, request, monkeypatch):
    if case.operation.path.startswith("/vms"):
        # The inventory and preflight ask the daemon's vCenter: the simulator, down to it.
        for key, value in govc_environment(request.getfixturevalue("vsphere")).items():
            monkeypatch.setenv(key, value)
    case.call_and_validate(headers={"Authorization": f"Token {alice_token}"})
    # Whatever was accepted stays inside the tmp export roots.
    for output_path in Job.objects.values_list("output_path", flat=True):
        assert Path(output_path).is_relative_to(sandbox), output_path
    for template in Schedule.objects.values_list("job_template", flat=True):
        if template.get("output_path"):
            assert Path(template["output_path"]).is_relative_to(sandbox), template
