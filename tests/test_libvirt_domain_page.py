"""The libvirt domain a job wrote (-libvirt), as the job page shows it and the dashboard and the
API hand it out: the job's own file only, never another, never a 500.

The domain files here are written by the tests, as the export's WriteDomain step leaves one:
``<output>/<stem>.xml``, recorded in the result (``libvirt_domain``, one of its artifacts) with
its plan in the conversion report (``conversion.libvirt_domain``)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from cli import render
from exports import converters, job_runner
from exports.domain_file import MAX_DOMAIN_BYTES
from exports.models import Job
from tests.conftest import APP01
from tests.factories import make_job

pytestmark = pytest.mark.django_db

WEB01 = "/dc/vm/prod/web01"
DOMAIN_XML = """<domain type='kvm'>
  <name>web01</name>
  <title>web01 &amp; friends</title>
  <uuid>42a7c6e1-0b1c-4e8e-9d2a-3f1c5b6d7e8f</uuid>
  <memory unit='MiB'>2048</memory>
  <vcpu>2</vcpu>
  <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{output}/converted/web01-disk1.qcow2'/><target dev='vda' bus='virtio'/><boot order='1'/></disk>
    <interface type='network'><mac address='00:50:56:aa:bb:01'/><source network='default'/><model type='virtio'/></interface>
  </devices>
</domain>
"""


def plan(output: Path, **overrides) -> dict:
    """``conversion.libvirt_domain`` as the export records it (PLAN-18: path, validated_by,
    defined, and DomainPlan.as_dict())."""
    return {
        "path": str(output / "web01.xml"),
        "validated_by": "virt-xml-validate",
        "defined": None,
        "name": "web01",
        "title": "web01 & friends",
        "uuid": "42a7c6e1-0b1c-4e8e-9d2a-3f1c5b6d7e8f",
        "memory_mib": 2048,
        "vcpus": 2,
        "sockets": 1,
        "cores": 2,
        "machine": "q35",
        "firmware": "efi",
        "secure_boot": True,
        "disk_bus": "virtio",
        "disk_bus_reason": "debian12 has virtio drivers (osinfo-db)",
        "nic_model": "virtio",
        "nic_model_reason": "debian12 has virtio drivers (osinfo-db)",
        "osinfo_id": "http://debian.org/debian/12",
        "disks": [
            {
                "path": str(output / "converted/web01-disk1.qcow2"),
                "format": "qcow2",
                "bus": "virtio",
                "target": "vda",
                "boot": 1,
            }
        ],
        "nics": [
            {"mac": "00:50:56:aa:bb:01", "network": "VM Network", "target": "default", "model": "virtio", "mapped": True},
            {"mac": "00:50:56:aa:bb:02", "network": "DMZ <lab>", "target": "default", "model": "virtio", "mapped": False},
        ],
        "warnings": ["network 'DMZ <lab>' is not in the network map: its NIC joins the default network"],
        **overrides,
    }  # fmt: skip


def domain_job(output: Path, *, name: str = "web01.xml", **result) -> Job:
    """A completed job whose export left ``output/name`` (the domain XML) and recorded it."""
    output.mkdir(parents=True, exist_ok=True)
    path = output / name
    path.write_text(DOMAIN_XML.format(output=output))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()  # as WriteDomain records it
    recorded = {
        "vm_name": "web01",
        "output_dir": str(output),
        "artifacts": ["web01.ovf", "manifest.json", "converted", name],
        "libvirt_domain": str(path),
        "conversion": {
            "converter": "qemu-img",
            "target_format": "qcow2",
            "duration_seconds": 1.0,
            "outputs": [],
            "libvirt_domain": plan(output, path=str(path), sha256=digest),
        },
        **result,
    }
    return make_job(WEB01, output_path=str(output), status=Job.Status.COMPLETED, result=recorded)


@pytest.fixture
def job(export_root) -> Job:
    return domain_job(export_root / "web01")


# ---- the job page ------------------------------------------------------------------------------


def test_the_job_page_shows_the_domain_its_choices_and_what_to_run_next(operator_browser, job):
    page = operator_browser.get(f"/ui/jobs/{job.id}/").content.decode()
    section = page.split('id="libvirt-domain-title"', 1)[1].split("</section>", 1)[0]
    assert "<code>web01</code>" in section and "(VM <bdi>web01 &amp; friends</bdi>)" in section
    assert "efi, secure boot on" in section and "q35" in section
    assert 'virtio <span class="muted">— <bdi>debian12 has virtio drivers (osinfo-db)</bdi></span>' in section
    # Each NIC's MAC and where it goes; the one whose network was not mapped is flagged.
    rows = section.split("<caption>Network interfaces</caption>", 1)[1].split("<tr>")[2:]
    assert "00:50:56:aa:bb:01" in rows[0] and "unmapped" not in rows[0]
    assert (
        "00:50:56:aa:bb:02" in rows[1] and "<bdi>DMZ &lt;lab&gt;</bdi>" in rows[1] and "unmapped" in rows[1]
    )
    assert "is not in the network map" in section
    assert "no: the file only" in section
    path = job.result["libvirt_domain"]
    assert f"<bdi>virsh define {path}</bdi>\n<bdi>virsh start web01</bdi>\n" in section
    # The XML itself, escaped, and its download.
    assert "&lt;domain type=&#x27;kvm&#x27;&gt;" in section and "<domain type=" not in section
    assert f'href="/ui/jobs/{job.id}/libvirt-domain.xml"' in section
    # A job that wrote none has no such section.
    plain = make_job(WEB01, status=Job.Status.COMPLETED, result={"output_dir": job.result["output_dir"]})
    assert "libvirt domain" not in operator_browser.get(f"/ui/jobs/{plain.id}/").content.decode()


def test_a_domain_defined_at_a_uri_says_so_and_only_start_is_left(operator_browser, export_root):
    job = domain_job(export_root / "web01")
    job.result["conversion"]["libvirt_domain"]["defined"] = "qemu:///system"
    job.save()
    section = (
        operator_browser.get(f"/ui/jobs/{job.id}/").content.decode().split('id="libvirt-domain-title"')[1]
    )
    assert "at <code>qemu:///system</code> (not started)" in section
    assert "<bdi>virsh -c qemu:///system start web01</bdi>\n" in section and "virsh define" not in section


def test_a_path_with_spaces_is_quoted_in_the_commands(operator_browser, export_root):
    job = domain_job(export_root / "my exports" / "web 01", name="web 01.xml")
    page = operator_browser.get(f"/ui/jobs/{job.id}/").content.decode()
    assert f"virsh define &#x27;{export_root}/my exports/web 01/web 01.xml&#x27;" in page


def test_a_domain_file_gone_since_is_said_not_shown(operator_browser, job):
    Path(job.result["libvirt_domain"]).unlink()
    page = operator_browser.get(f"/ui/jobs/{job.id}/").content.decode()
    assert "is not there any more" in page and "Download the domain XML" not in page


def test_a_plan_edited_into_nonsense_still_shows_the_page(operator_browser, export_root):
    job = domain_job(export_root / "web01")
    job.result["conversion"]["libvirt_domain"] = {"nics": 5, "disks": "vda", "warnings": {"a": 1}, "name": 7}
    job.save()
    response = operator_browser.get(f"/ui/jobs/{job.id}/")
    assert response.status_code == 200 and "libvirt domain" in response.content.decode()


# ---- the download: the dashboard's and the API's -----------------------------------------------


def dashboard_download(client, job_id: str):
    return client.get(f"/ui/jobs/{job_id}/libvirt-domain.xml")


def api_download(client, job_id: str):
    return client.get(f"/jobs/{job_id}/libvirt-domain")


DOORS = [("viewer_browser", dashboard_download), ("viewer_api", api_download)]


@pytest.mark.parametrize(("persona", "download"), DOORS, ids=["dashboard", "api"])
def test_a_viewer_downloads_the_domain_xml_as_an_attachment(request, persona, download, job):
    response = download(request.getfixturevalue(persona), job.id)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert response["Content-Disposition"] == 'attachment; filename="web01.xml"'
    assert response.content == Path(job.result["libvirt_domain"]).read_bytes()


def test_the_api_answers_the_file_whatever_the_client_accepts(viewer_api, job):
    response = viewer_api.get(f"/jobs/{job.id}/libvirt-domain", HTTP_ACCEPT="application/xml")
    assert response.status_code == 200 and response.content.startswith(b"<domain")
    missing = viewer_api.get("/jobs/job-nosuch/libvirt-domain", HTTP_ACCEPT="application/xml")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"


def test_the_download_name_is_safe_whatever_the_vm_is_called(viewer_api, export_root):
    job = domain_job(export_root / "odd", name='we"b;\u0432\u0435\u0431 01.xml')
    response = api_download(viewer_api, job.id)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="we_b_____01.xml"'


def test_strangers_may_not_download(client, no_role_api, job):
    assert api_download(no_role_api, job.id).status_code == 403
    assert client.get(f"/jobs/{job.id}/libvirt-domain").status_code == 401
    assert dashboard_download(client, job.id).status_code == 302  # to the log-in page


def elsewhere(export_root: Path) -> Path:
    """A file that is not the job's: another export's secret, in the same export root."""
    other = export_root / "other"
    other.mkdir(exist_ok=True)
    secret = other / "secret.xml"
    secret.write_text("<secret>another job's file</secret>")
    return secret


def record(job: Job, **result) -> Job:
    job.result = {**job.result, **result}
    job.save()
    return job


def symlink_file(job: Job, export_root: Path) -> Job:
    path = Path(job.result["libvirt_domain"])
    path.unlink()
    path.symlink_to(elsewhere(export_root))
    return job


def overwritten_since(job: Job, export_root: Path) -> Job:
    """A later export into the same directory (-overwrite) wrote its own domain there."""
    Path(job.result["libvirt_domain"]).write_text(DOMAIN_XML.replace("web01 &amp; friends", "a later export"))
    return job


def symlink_output(job: Job, export_root: Path) -> Job:
    output = Path(job.result["output_dir"])
    real = output.with_name("real")
    output.rename(real)
    output.symlink_to(real)
    return job


def fifo(job: Job, export_root: Path) -> Job:
    path = Path(job.result["libvirt_domain"])
    path.unlink()
    os.mkfifo(path)  # opening it to read would wait for a writer forever
    return job


def directory(job: Job, export_root: Path) -> Job:
    path = Path(job.result["libvirt_domain"])
    path.unlink()
    path.mkdir()
    return job


def too_large(job: Job, export_root: Path) -> Job:
    with open(job.result["libvirt_domain"], "ab") as handle:
        handle.truncate(MAX_DOMAIN_BYTES + 1)
    return job


def gone(job: Job, export_root: Path) -> Job:
    Path(job.result["libvirt_domain"]).unlink()
    return job


def other_file_recorded(job: Job, export_root: Path) -> Job:
    return record(job, libvirt_domain=str(elsewhere(export_root)))


def climbing_path(job: Job, export_root: Path) -> Job:
    secret = elsewhere(export_root)
    return record(job, libvirt_domain=f"{job.result['output_dir']}/../other/{secret.name}")


def climbing_output(job: Job, export_root: Path) -> Job:
    secret = elsewhere(export_root)
    output = f"{job.result['output_dir']}/../other"
    return record(job, output_dir=output, libvirt_domain=f"{output}/{secret.name}", artifacts=[secret.name])


def system_file(job: Job, export_root: Path) -> Job:
    return record(job, output_dir="/etc", libvirt_domain="/etc/passwd", artifacts=["passwd"])


def outside_the_roots(job: Job, export_root: Path) -> Job:
    outside = export_root.parent.parent / f"outside-{job.id}"
    outside.mkdir()
    (outside / "web01.xml").write_text("<domain/>")
    return record(job, output_dir=str(outside), libvirt_domain=str(outside / "web01.xml"))


def not_an_artifact(job: Job, export_root: Path) -> Job:
    return record(job, artifacts=["web01.ovf"])


def the_manifest_recorded(job: Job, export_root: Path) -> Job:
    manifest = Path(job.result["output_dir"]) / "manifest.json"
    manifest.write_text('{"secret": true}')
    return record(job, libvirt_domain=str(manifest))


def not_a_string(job: Job, export_root: Path) -> Job:
    return record(job, libvirt_domain=["/etc/passwd"])


def relative_path(job: Job, export_root: Path) -> Job:
    return record(job, libvirt_domain="web01.xml")


def nul_in_path(job: Job, export_root: Path) -> Job:
    return record(job, libvirt_domain=job.result["libvirt_domain"] + "\x00.xml")


def not_completed(job: Job, export_root: Path) -> Job:
    job.status = Job.Status.FAILED
    job.save()
    return job


def no_result(job: Job, export_root: Path) -> Job:
    job.result = None
    job.save()
    return job


REFUSED = [
    symlink_file, symlink_output, fifo, directory, too_large, gone, other_file_recorded, climbing_path,
    climbing_output, system_file, outside_the_roots, not_an_artifact, the_manifest_recorded,
    not_a_string, relative_path, nul_in_path, not_completed, no_result, overwritten_since,
]  # fmt: skip


@pytest.mark.parametrize("spoil", REFUSED, ids=lambda spoil: spoil.__name__)
@pytest.mark.parametrize(("persona", "download"), DOORS, ids=["dashboard", "api"])
def test_anything_but_the_jobs_own_domain_file_is_a_404(request, persona, download, spoil, job, export_root):
    client = request.getfixturevalue(persona)
    assert download(client, job.id).status_code == 200  # until spoiled
    response = download(client, spoil(job, export_root).id)
    assert response.status_code == 404
    assert b"secret" not in response.content and b"root:" not in response.content


def test_the_schema_documents_the_download(viewer_api):
    schema = viewer_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/jobs/{job_id}/libvirt-domain"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["application/xml"]
    assert {"401", "403", "404"} <= set(operation["responses"])


# ---- end to end: a real -libvirt export of the vSphere test server's VM ------------------------


@pytest.mark.vsphere
@pytest.mark.django_db(transaction=True)
def test_a_real_libvirt_export_is_shown_and_handed_out(
    operator_api,
    viewer_api,
    viewer_browser,
    govc_env,
    app01_seeds,
    export_root,
    redis_url,
    monkeypatch,
    settings,
):
    # qemu-img converts (no hyper2kvm found): the quicker of the two, and the domain is the same.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(converters, "environment_bin", lambda: "/nonexistent")
    settings.HYPERSDK_HYPER2KVM_PATHS = []
    spec = {"vm_path": APP01, "output_path": str(export_root / "app01"), "convert": True, "libvirt": True}
    job_id = operator_api.post("/jobs/submit", spec, format="json").json()["job_ids"][0]
    assert job_runner.run_job(job_id) == "completed", Job.objects.get(id=job_id).error

    job = viewer_api.get(f"/jobs/{job_id}").json()
    path = job["result"]["libvirt_domain"]
    name = job["result"]["conversion"]["libvirt_domain"]["name"]
    download = viewer_api.get(f"/jobs/{job_id}/libvirt-domain")
    assert download.status_code == 200 and download.content == Path(path).read_bytes()
    assert download["Content-Disposition"] == 'attachment; filename="app01.xml"'
    assert ElementTree.fromstring(download.content).findtext("name") == name
    page = viewer_browser.get(f"/ui/jobs/{job_id}/").content.decode()
    assert f"<bdi>virsh define {path}</bdi>\n<bdi>virsh start {name}</bdi>\n" in page
    assert viewer_browser.get(f"/ui/jobs/{job_id}/libvirt-domain.xml").content == download.content
    assert render.job_detail(job)[-3:] == [
        f"Domain:    {path}",
        f"Next:      virsh define {path}",
        f"           virsh start {name}",
    ]


def test_names_with_directional_controls_reorder_nothing_on_the_page(operator_browser, export_root):
    job = domain_job(export_root / "bidi")
    tricky = "web\u202e10bew"
    job.result["conversion"]["libvirt_domain"].update(
        title=tricky, warnings=[f"{tricky}: a warning"], define_error=f"virsh said {tricky}"
    )
    job.save()
    section = (
        operator_browser.get(f"/ui/jobs/{job.id}/").content.decode().split('id="libvirt-domain-title"')[1]
    )
    isolated = re.findall(r"<bdi>[^<\s]*\u202e[^<\s]*</bdi>", section)
    assert section.count("\u202e") == len(isolated) == 3  # the title, the warning, the define error
    assert "no: <bdi>virsh said <bdi>" in section  # a define that failed says why
