"""What the dashboard's numbers say and when they change: the Daemon card's running count beside
the job list, IEC sizes from the one formatter, every file a job left, the favicon."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from exports.models import Job
from hypersdk.lib.units import human_size
from tests.factories import make_job
from tests.test_dashboard_views import HTMX

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


@pytest.fixture
def operator(operator, client):
    client.force_login(operator)
    return operator


# ---- the running count ---------------------------------------------------------------------------


def test_the_job_list_s_refresh_carries_the_daemon_card_s_running_count(client, operator):
    make_job("/dc/vm/prod/a", status=Job.Status.RUNNING)
    make_job("/dc/vm/prod/b", status=Job.Status.RUNNING)
    make_job("/dc/vm/prod/c", status=Job.Status.PENDING)
    fragment = client.get("/ui/overview/jobs/", **HTMX).content.decode()
    running = re.search(
        r'<dd id="daemon-running" hx-swap-oob="true"><span data-field="running">(\d+)</span>', fragment
    )
    assert running and running.group(1) == "2"


def test_the_daemon_card_counts_running_jobs_as_the_job_list_does(client, operator, redis_url):
    make_job("/dc/vm/prod/a", status=Job.Status.RUNNING)
    card = client.get("/ui/overview/status/", **HTMX).content.decode()
    assert '<dd id="daemon-running" hx-preserve="true"><span data-field="running">1</span> (at most' in card


def test_the_full_page_has_no_out_of_band_fragment(client, operator):
    assert "hx-swap-oob" not in client.get("/").content.decode()


# ---- sizes ---------------------------------------------------------------------------------------


def test_no_template_formats_sizes_with_django_s_decimal_filter():
    # filesizeformat says "MB" for MiB; the dashboard's sizes go through hypersdk.lib.units.
    users = [p.relative_to(TEMPLATES) for p in TEMPLATES.rglob("*.html") if "filesizeformat" in p.read_text()]
    assert users == []


def test_the_daemon_card_gives_export_root_sizes_in_iec_units(
    client, operator, redis_url, settings, tmp_path
):
    settings.HYPERSDK_EXPORT_ROOTS = [str(tmp_path)]
    card = client.get("/ui/overview/status/", **HTMX).content.decode()
    sizes = re.findall(r"<td>([\d.]+ [KMGT]?i?B)</td>", card)
    assert len(sizes) == 2 and all(re.fullmatch(r"[\d.]+ (B|KiB|MiB|GiB|TiB)", size) for size in sizes)


def test_a_running_job_s_transfer_reads_in_iec_units(client, operator):
    job = make_job("/dc/vm/prod/a", status=Job.Status.RUNNING, bytes_done=3 << 29, bytes_total=5 << 30)
    panel = client.get(f"/ui/jobs/{job.id}/live/", **HTMX).content.decode()
    assert "1.5 GiB of 5.0 GiB" in panel


# ---- the job list and a job's files ----------------------------------------------------------------


def test_the_job_list_shows_each_job_s_output_path(client, operator, export_root):
    make_job("/dc/vm/prod/a", output_path=str(export_root / "a-out"))
    table = client.get("/ui/jobs/", **HTMX).content.decode()
    assert '<th scope="col">Output</th>' in table
    assert f'<code class="path">{export_root / "a-out"}</code>' in table


def ova_export(output: Path) -> dict:
    """A completed OVA export with conversion, as the pipeline records it: the disks it lists in
    ``files`` went into the OVA; ``artifacts`` are what it left in the directory."""
    (output / "converted").mkdir(parents=True)
    (output / "app01.ova").write_bytes(b"o" * 3072)
    (output / "manifest.json").write_text(json.dumps({"version": "1.0"}))
    (output / "conversion-report.json").write_text("{}")
    (output / "converted" / "app01-disk1.qcow2").write_bytes(b"q" * 2048)
    (output / "converted" / "report.json").write_text("{}")
    return {
        "output_dir": str(output),
        "package": str(output / "app01.ova"),
        "files": [{"name": "app01-disk1.vmdk", "size": 1536, "sha256": "a" * 64}],
        "manifest_path": str(output / "manifest.json"),
        "conversion": {
            "converter": "qemu-img",
            "target_format": "qcow2",
            "duration_seconds": 75.0,
            "outputs": [
                {
                    "disk_id": "app01-disk1",
                    "source": "",
                    "output": str(output / "converted" / "app01-disk1.qcow2"),
                    "format": "qcow2",
                    "size": 2048,
                    "sha256": "c" * 64,
                    "duration_seconds": 1.0,
                }
            ],
            "converter_report": str(output / "converted" / "report.json"),
        },
        "artifacts": ["app01.ova", "manifest.json", "converted", "conversion-report.json"],
    }


def file_rows(page: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(
        r'<tr><td><code class="path" title="[^"]*">([^<]+)</code></td><td class="size">(.*?)</td><td>(.*?)</td></tr>',
        page,
    )
    return {name: (size, checksum) for name, size, checksum in rows}


def test_a_job_page_lists_every_file_the_export_left_and_no_disk_inside_the_ova(
    client, operator, export_root
):
    job = make_job("/dc/vm/prod/app01", status=Job.Status.COMPLETED, result=ova_export(export_root / "app01"))
    rows = file_rows(client.get(f"/ui/jobs/{job.id}/").content.decode())
    assert list(rows) == [
        "app01.ova",
        "manifest.json",
        "converted/app01-disk1.qcow2",
        "converted/report.json",
        "conversion-report.json",
    ]
    assert rows["app01.ova"][0] == human_size(3072) == "3.0 KiB"
    assert "c" * 64 in rows["converted/app01-disk1.qcow2"][1]


def test_a_file_removed_since_is_listed_as_missing(client, operator, export_root):
    output = export_root / "app01"
    job = make_job("/dc/vm/prod/app01", status=Job.Status.COMPLETED, result=ova_export(output))
    (output / "app01.ova").unlink()
    rows = file_rows(client.get(f"/ui/jobs/{job.id}/").content.decode())
    assert rows["app01.ova"][0] == '<span class="error">missing</span>'


def test_a_job_page_says_durations_as_the_clis_do(client, operator, export_root):
    job = make_job("/dc/vm/prod/app01", status=Job.Status.COMPLETED, result=ova_export(export_root / "app01"))
    assert "in 1m 15s." in client.get(f"/ui/jobs/{job.id}/").content.decode()


# ---- the favicon -----------------------------------------------------------------------------------


def test_the_favicon_is_served_at_the_site_root(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO header


def test_the_home_page_shows_the_running_count_before_the_workers_answer(client, operator):
    make_job("/dc/vm/prod/a", status=Job.Status.RUNNING)
    page = client.get("/").content.decode()
    card = page.split('id="daemon-status"', 1)[1]
    assert '<span data-field="running">1</span>' in card and "Asking the workers" in card
    assert 'hx-trigger="load, every 10s"' in card
