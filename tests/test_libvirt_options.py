"""The libvirt domain's options (-libvirt, -disk-bus, -network-map, -define) judged by one
definition at every door that takes a job: the API's job spec, schedules (API, service, the
tick), the converter form and its preflight, the schedule form. A -define URI the server does
not allow (HYPERSDK_LIBVIRT_DEFINE_URIS) is a one-line field error everywhere: libvirt URIs can
name transports that run programs. The CLIs: tests/test_libvirt_options_cli.py."""

from __future__ import annotations

import json

import pytest

from exports.job_spec import UNSCHEDULABLE
from exports.models import Job
from libvirt_domain.define import ALLOWED_URIS_VARIABLE
from schedules.models import Schedule
from tests.factories import schedule_admin_form
from tests.test_dashboard_views import HTMX, converter_form

pytestmark = pytest.mark.django_db

WEB01 = "/dc/vm/prod/web01"
DOMAIN = {"convert": True, "libvirt": True}
# Each names a transport that runs a program, another host, another socket, or is only nearly
# an allowed one: none is in the default list (qemu:///system qemu:///session).
HOSTILE_URIS = [
    "qemu+ext:///system?command=/bin/sh",
    "qemu+ext:///system?command=/usr/bin/touch%20/tmp/pwned",
    "qemu+ssh://root@attacker.example/system",
    "qemu:///system?socket=/tmp/evil.sock",
    "qemu+tcp://10.0.0.1/system",
    "test:///default",
    "QEMU:///system",
    " qemu:///system",
    "qemu:///system\n",
]


def refused(uri: str, allowed: str = "qemu:///system, qemu:///session") -> str:
    return f"libvirt URI {uri!r} is not allowed: use one of {allowed} ({ALLOWED_URIS_VARIABLE})"


@pytest.fixture(autouse=True)
def default_allowed_uris(monkeypatch):
    monkeypatch.delenv(ALLOWED_URIS_VARIABLE, raising=False)


def submit(api, export_root, **options):
    spec = {"vm_path": WEB01, "output_path": str(export_root / "web01"), **options}
    return api.post("/jobs/submit", spec, format="json")


# ---- the API's job spec ----------------------------------------------------------------------


@pytest.mark.parametrize("uri", HOSTILE_URIS)
def test_a_define_uri_the_server_does_not_allow_is_a_400_on_its_field(operator_api, export_root, uri):
    response = submit(operator_api, export_root, **DOMAIN, define_uri=uri)
    assert response.status_code == 400
    assert response.json()["define_uri"] == [refused(uri)]
    assert "\n" not in response.json()["define_uri"][0]
    assert not Job.objects.exists()


def test_the_allowed_uris_are_the_administrators(operator_api, export_root, monkeypatch):
    assert submit(operator_api, export_root, **DOMAIN, define_uri="qemu:///system").status_code == 202
    assert Job.objects.get().options["define_uri"] == "qemu:///system"
    monkeypatch.setenv(ALLOWED_URIS_VARIABLE, "qemu+ssh://kvm1.example/system")
    response = submit(operator_api, export_root, **DOMAIN, define_uri="qemu:///system", overwrite=True)
    assert response.json()["define_uri"] == [refused("qemu:///system", "qemu+ssh://kvm1.example/system")]
    monkeypatch.setenv(ALLOWED_URIS_VARIABLE, "")
    response = submit(operator_api, export_root, **DOMAIN, define_uri="qemu:///system")
    assert response.json()["define_uri"] == [refused("qemu:///system", "none")]


@pytest.mark.parametrize(
    ("options", "errors"),
    [
        ({"libvirt": True}, {"libvirt": ['needs "convert": true']}),
        ({"convert": True, "define_uri": "qemu:///system"}, {"define_uri": ['needs "libvirt": true']}),
        ({"convert": True, "disk_bus": "sata"}, {"disk_bus": ['needs "libvirt": true']}),
        ({"network_map": "VM Network=default"}, {"network_map": ['needs "libvirt": true']}),
        (
            {**DOMAIN, "network_map": "VM Network"},
            {"network_map": ["network map pair 'VM Network': write <vSphere network>=<libvirt network>"]},
        ),
        (
            {**DOMAIN, "network_map": "DMZ=bridge:not a bridge"},
            {
                "network_map": [
                    "network map pair 'DMZ=bridge:not a bridge': 'not a bridge' is not a bridge name "
                    "(letters, digits, _ . : -, at most 15)"
                ]
            },
        ),
    ],
)
def test_a_domain_option_without_its_switch_or_malformed_is_a_400_on_its_field(
    operator_api, export_root, options, errors
):
    response = submit(operator_api, export_root, **options)
    assert response.status_code == 400
    assert {name: response.json()[name] for name in errors} == errors
    assert not Job.objects.exists()


def test_a_batch_says_which_job_asked_for_a_uri_not_allowed(operator_api, export_root):
    jobs = [
        {"vm_path": WEB01, "output_path": str(export_root / "a"), **DOMAIN},
        {"vm_path": WEB01, "output_path": str(export_root / "b"), **DOMAIN, "define_uri": HOSTILE_URIS[0]},
    ]
    response = operator_api.post("/jobs/submit", {"jobs": jobs}, format="json")
    assert response.status_code == 202
    assert response.json()["errors"] == [{"index": 1, "errors": {"define_uri": [refused(HOSTILE_URIS[0])]}}]


# ---- schedules -------------------------------------------------------------------------------


def schedule_spec(export_root, **options) -> dict:
    return {
        "name": "nightly",
        "cron": "0 2 * * *",
        "vm_path": WEB01,
        "output_path": str(export_root),
        **options,
    }


def test_a_schedule_never_defines_its_domain_and_needs_its_switches(operator_api, export_root):
    # Allowed or not: each night's export would meet the domain the last one defined.
    for uri, error in (
        (HOSTILE_URIS[0], refused(HOSTILE_URIS[0])),
        ("qemu:///system", UNSCHEDULABLE["define_uri"]),
    ):
        response = operator_api.post(
            "/schedules", schedule_spec(export_root, **DOMAIN, define_uri=uri), format="json"
        )
        assert (response.status_code, response.json()["define_uri"]) == (400, [error])
    response = operator_api.post("/schedules", schedule_spec(export_root, libvirt=True), format="json")
    assert (response.status_code, response.json()["libvirt"]) == (400, ['needs "convert": true'])
    assert not Schedule.objects.exists()


def test_a_change_that_turns_convert_off_refuses_the_domain_the_schedule_keeps(operator_api, export_root):
    created = operator_api.post("/schedules", schedule_spec(export_root, **DOMAIN), format="json")
    assert created.status_code == 201, created.json()
    schedule_id = created.json()["id"]
    response = operator_api.patch(f"/schedules/{schedule_id}", {"convert": False}, format="json")
    assert (response.status_code, response.json()["libvirt"]) == (400, ['needs "convert": true'])
    response = operator_api.patch(
        f"/schedules/{schedule_id}", {"convert": False, "libvirt": False}, format="json"
    )
    assert response.status_code == 200
    assert Schedule.objects.get(id=schedule_id).job_template["libvirt"] is False


def test_the_admins_schedule_form_refuses_a_uri_not_allowed(admin_client):
    template = json.dumps({"vm_path": WEB01, **DOMAIN, "define_uri": HOSTILE_URIS[0]})
    response = admin_client.post("/admin/schedules/schedule/add/", schedule_admin_form(job_template=template))
    assert response.status_code == 200 and not Schedule.objects.exists()
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == [
        f"job template: define_uri: {refused(HOSTILE_URIS[0])}",
        f"job template: define_uri: {UNSCHEDULABLE['define_uri']}",
    ]  # sentences, not Python's repr of the serializer's errors


# ---- the dashboard: the converter and its preflight, the schedule form ------------------------


@pytest.fixture
def operator(operator, client):
    client.force_login(operator)
    return operator


def test_write_libvirt_domain_is_ticked_for_qcow2_and_needs_auto_convert(client, operator):
    page = client.get("/ui/converter/").content.decode()
    box = (
        page.split('name="libvirt"', 1)[0].rsplit("<input", 1)[1]
        + page.split('name="libvirt"', 1)[1].split(">", 1)[0]
    )
    assert "checked" in box and 'data-requires="auto_convert"' in box
    assert 'data-default-for="qcow2 raw"' in box and 'data-default-from="target_format"' in box
    for name in ("disk_bus", "network_map", "define_uri"):
        control = page.split(f'name="{name}"', 1)[1].split(">", 1)[0]
        assert 'data-requires="libvirt"' in control, name
    assert "/static/dashboard/options.js" in page


def test_the_default_tick_without_auto_convert_asks_for_no_domain(client, operator, export_root):
    # What a browser without the page's script sends: the box ticked, Auto-convert not.
    form = converter_form(
        output_dir=str(export_root / "web01"), auto_convert=None, libvirt="on", disk_bus="sata",
        network_map="VM Network", define_uri=HOSTILE_URIS[0],
    )  # fmt: skip
    response = client.post("/ui/converter/", form)
    assert response.status_code == 302
    options = Job.objects.get().options
    assert (options["convert"], options["libvirt"]) == (False, False)
    assert (options["disk_bus"], options["network_map"], options["define_uri"]) == ("auto", "", "")


def test_the_converter_sends_the_domain_options_with_its_box(client, operator, export_root):
    form = converter_form(
        output_dir=str(export_root / "web01"), libvirt="on", disk_bus="sata",
        network_map=" VM Network=default,DMZ=bridge:br-dmz ", define_uri="qemu:///system",
    )  # fmt: skip
    assert client.post("/ui/converter/", form).status_code == 302
    options = Job.objects.get().options
    assert (options["convert"], options["libvirt"], options["disk_bus"]) == (True, True, "sata")
    assert (options["network_map"], options["define_uri"]) == (
        "VM Network=default,DMZ=bridge:br-dmz",
        "qemu:///system",
    )


@pytest.mark.parametrize("uri", HOSTILE_URIS[:5])
def test_the_converter_shows_a_uri_not_allowed_on_its_field(client, operator, export_root, uri):
    form = converter_form(output_dir=str(export_root / "web01"), libvirt="on", define_uri=uri)
    response = client.post("/ui/converter/", form, **HTMX)
    assert response.status_code == 422
    assert response.context["form"].errors["define_uri"] == [refused(uri)]
    page = response.content.decode()
    assert (
        'id="id_define_uri-error"' in page
        and 'aria-invalid="true"' in page.split('name="define_uri"')[1].split(">")[0]
    )
    assert not Job.objects.exists()


def test_a_bad_network_map_is_shown_on_its_field(client, operator, export_root):
    form = converter_form(output_dir=str(export_root / "web01"), libvirt="on", network_map="=default")
    response = client.post("/ui/converter/", form, **HTMX)
    assert response.status_code == 422
    assert response.context["form"].errors["network_map"] == [
        "network map pair '=default': the vSphere network's name is empty"
    ]


def test_the_preflight_panel_names_a_uri_not_allowed(client, operator, export_root):
    form = converter_form(output_dir=str(export_root / "web01"), libvirt="on", define_uri=HOSTILE_URIS[0])
    panel = client.post("/ui/converter/preflight/", form, **HTMX).content.decode()
    assert "define_uri: libvirt URI &#x27;qemu+ext:///system?command=/bin/sh&#x27; is not allowed" in panel


def schedule_form(export_root, **fields) -> dict:
    form = {
        "name": "nightly", "cron": "0 2 * * *", "timezone": "UTC", "enabled": "on", "overlap": "skip",
        "retention": "", "vm_path": WEB01, "output_path": str(export_root), "vcenter": "",
        "target_format": "qcow2", "conversion_timeout": "120", "disk_bus": "auto",
    }  # fmt: skip
    form.update(fields)
    return {name: value for name, value in form.items() if value is not None}


def test_the_schedule_form_has_no_define_field_and_drops_a_crafted_one(client, operator, export_root):
    form = schedule_form(export_root, auto_convert="on", libvirt="on", define_uri=HOSTILE_URIS[2])
    assert client.post("/ui/schedules/new/", form).status_code == 302
    assert Schedule.objects.get().job_template.get("define_uri", "") == ""
    page = client.get("/ui/schedules/new/").content.decode()
    assert 'name="define_uri"' not in page
    # The domain's fields need its box, as in the converter; the bus's help beside its choices.
    assert 'data-requires="libvirt"' in page.split('name="disk_bus"', 1)[1].split(">", 1)[0]
    assert 'id="id_disk_bus-help">auto: virtio when the guest OS has virtio drivers' in page


def test_a_schedule_edited_without_its_domain_forgets_its_options(client, operator, export_root):
    form = schedule_form(
        export_root, auto_convert="on", libvirt="on", disk_bus="scsi", network_map="VM Network=default",
    )  # fmt: skip
    assert client.post("/ui/schedules/new/", form).status_code == 302
    schedule = Schedule.objects.get()
    assert schedule.job_template["network_map"] == "VM Network=default"
    # Unticking Auto-convert: the script disables the rest (nothing sent), or they arrive as they were.
    edited = schedule_form(export_root, disk_bus=None)
    assert client.post(f"/ui/schedules/{schedule.id}/edit/", edited).status_code == 302
    template = Schedule.objects.get().job_template
    assert (template["convert"], template["libvirt"], template["disk_bus"]) == (False, False, "auto")
    assert template["network_map"] == ""


def test_a_schedule_row_that_holds_a_define_uri_runs_no_job_and_keeps_no_edit(operator_api, export_root):
    # A row written before schedules refused it (or by hand in the database).
    from tests.factories import make_schedule

    template = {"vm_path": WEB01, "output_path": str(export_root), **DOMAIN, "define_uri": "qemu:///system"}
    schedule = make_schedule(job_template=template)
    response = operator_api.post(f"/schedules/{schedule.id}/trigger")
    assert response.status_code == 409 and UNSCHEDULABLE["define_uri"] in response.json()["detail"]
    assert not Job.objects.filter(status=Job.Status.PENDING).exists()
    response = operator_api.patch(f"/schedules/{schedule.id}", {"retention": 3}, format="json")
    assert (response.status_code, response.json()["define_uri"]) == (400, [UNSCHEDULABLE["define_uri"]])
