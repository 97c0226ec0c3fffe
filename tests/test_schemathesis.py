"""schemathesis against the daemon's own OpenAPI schema (/api/schema/), as an operator.

Every operation gets generated requests, valid and invalid; each response must be no 5xx, a
documented status code with a documented content type, and a body that matches the schema.
The WSGI app is called in-process on the test database; exports only go to tmp dirs and no
worker runs, so jobs stay pending. Derandomized: the same cases every run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from api_tokens.service import issue_token
from exports.models import Job
from hypersdk.permissions import grant_role
from hypersdk.wsgi import application
from schedules.models import Schedule

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
# Loaded once at collection from the app itself (no database needed to build it).
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)


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


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,  # no replay of earlier runs' examples: every run, CI's included, is the same
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, sandbox, alice_token):
    case.call_and_validate(headers={"Authorization": f"Token {alice_token}"})
    # Whatever was accepted stays inside the tmp export roots.
    for output_path in Job.objects.values_list("output_path", flat=True):
        assert Path(output_path).is_relative_to(sandbox), output_path
    for template in Schedule.objects.values_list("job_template", flat=True):
        if template.get("output_path"):
            assert Path(template["output_path"]).is_relative_to(sandbox), template
