"""Guide Example 4 in a real browser, watching the progress: the Manifest Converter exports
web01 (a disk big enough that each phase takes visible time) and the job's panel shows the
percentage rising through every phase to 100 %, with an ETA, live over the websocket."""

from __future__ import annotations

import math
import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from exports.models import Job
from tests.conftest import WorkerProcess, govc_environment, start_simulator
from tests.test_dashboard_browser import EXPORT_WAIT_MS, browser, logged_in, page, server  # noqa: F401
from tests.vsphere_sim.harness import make_stream_vmdk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.vsphere]

WEB01 = "/dc/vm/prod/web01"
DISK_MIB = 160  # random data: the transfer (throttled) and each local phase take a while
NFC_RATE = 24 << 20

# Records every value the job panel shows, as the page changes it (no polling interval to
# miss one): phase, percent, ETA text, status.
RECORD_PANEL = """
window.progressSeen = [];
const field = (panel, name) => (panel.querySelector(`[data-field="${name}"]`) || {}).textContent || "";
const record = () => {
  const panel = document.querySelector("[data-job-stream]");
  if (!panel) return;
  const entry = {
    phase: field(panel, "phase").trim(),
    percent: parseFloat(field(panel, "percent")),
    eta: field(panel, "eta").trim(),
    status: field(panel, "status").trim(),
  };
  const last = window.progressSeen[window.progressSeen.length - 1];
  if (!last || ["phase", "percent", "eta", "status"].some((key) => last[key] !== entry[key])) {
    window.progressSeen.push(entry);
  }
};
new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
"""


@pytest.fixture(scope="module")
def big_web01(tmp_path_factory):
    """A vCenter of this module's own whose web01 has one disk of random data, served slowly."""
    sim = start_simulator(tmp_path_factory.mktemp("big-web01"), nfc_rate=NFC_RATE)
    sim.seed_disks(
        WEB01, [make_stream_vmdk(tmp_path_factory.mktemp("web01-seed") / "web01-disk1.vmdk", DISK_MIB)]
    )
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def web01_worker(worker_environment, big_web01, tmp_path_factory):
    """A worker whose default vCenter (GOVC_*) is that one: the converter names no vCenter."""
    env = {**worker_environment, **govc_environment(big_web01)}
    worker = WorkerProcess(
        env, tmp_path_factory.mktemp("worker") / "worker.log", name=f"progress-{uuid.uuid4().hex[:6]}"
    ).start()
    yield worker
    worker.stop()


def test_example_4_shows_the_percentage_rise_through_every_phase_with_an_eta(
    logged_in: Page,  # noqa: F811
    web01_worker,
    export_root,
):
    tab = logged_in
    tab.get_by_role("link", name="📦 Manifest Converter").click()
    expect(tab.get_by_role("heading", name="📦 Manifest Converter")).to_be_visible()
    tab.get_by_label("VM Path").fill(WEB01)
    tab.get_by_label("Output Directory").fill(str(export_root / "web01"))
    tab.get_by_label("QCOW2 (Recommended)").check()
    tab.get_by_label("Auto-convert").check()
    tab.get_by_label("Verify").check()
    tab.evaluate(RECORD_PANEL)

    tab.get_by_role("button", name="🚀 Start Export & Conversion").click()

    panel = tab.locator("[data-job-stream]")
    expect(panel).to_be_visible()
    job_id = panel.get_attribute("data-job-stream")
    expect(panel.locator('[data-field="status"]')).to_have_text("completed", timeout=EXPORT_WAIT_MS)
    expect(panel.locator('[data-field="percent"]')).to_have_text("100.0%")
    seen = tab.evaluate("window.progressSeen")

    percents = [entry["percent"] for entry in seen if not math.isnan(entry["percent"])]
    assert percents == sorted(percents), f"the percentage went back: {percents}"
    assert percents[-1] == 100.0
    phases = [entry["phase"] for entry in seen]
    for phase in ("downloading", "packaging", "converting", "verifying"):
        assert phase in phases, f"{phase} never shown: {sorted(set(phases))}"
    # The percentage rose within and across the phases that move bytes, below 100 until the end.
    highest = {
        phase: max(e["percent"] for e in seen if e["phase"] == phase)
        for phase in ("downloading", "converting", "verifying")
    }
    assert 0 < highest["downloading"] < highest["converting"] < highest["verifying"]
    assert len({e["percent"] for e in seen if e["phase"] == "downloading"}) > 2
    assert any(e["phase"] == "converting" and e["percent"] < 100 for e in seen)
    # An ETA was shown while it ran, and none once it was over.
    assert any(re.fullmatch(r"ETA \d.*", e["eta"]) for e in seen if e["status"] == "running")
    expect(panel.locator('[data-field="eta"]')).to_have_text("")
    assert Job.objects.get(id=job_id).percent == 100.0
