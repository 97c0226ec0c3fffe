"""The pipeline is an ordered list of steps: a new step is one class and one entry, and the
run's record covers its files (removed on failure, set aside and restored under -overwrite)."""

from __future__ import annotations

import pytest

from exports.pipeline.connect import VCenterTarget
from exports.pipeline.errors import ExportError
from exports.pipeline.options import ExportOptions
from exports.pipeline.run import STEPS, export_vm
from exports.pipeline.step import ExportRun, Step
from tests.conftest import APP01, govc_environment

pytestmark = pytest.mark.vsphere


class ExampleStep(Step):
    """A stand-in for a new step (say, a libvirt domain): one file, declared as describing the export."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.saw_session: object = "unset"

    def run(self, run: ExportRun) -> None:
        self.saw_session = run.service_instance
        path = run.output.track(f"{run.stem}.xml")
        path.write_text(f"<domain>{run.facts.name}</domain>\n")
        if self.fail:
            raise ExportError("domain step failed")

    def companion_names(self, stem: str) -> list[str]:
        return [f"{stem}.xml"]


def test_the_steps_run_in_a_documented_order():
    names = [type(step).__name__ for step in STEPS]
    assert names == [
        "FindVM",
        "Preflight",
        "CheckPackageNames",
        "DryRun",
        "PowerOff",
        "PrepareOutput",
        "Transfer",
        "Describe",
        "Package",
        "WriteManifest",
        "Convert",
        "WriteDomain",
        "Verify",
        "DefineDomain",
    ]
    # The vCenter session closes after the last step that needs it: before packaging.
    online = [type(step).__name__ for step in STEPS if step.needs_vcenter]
    assert online[-1] == "Describe"


def test_a_new_step_is_one_entry_and_its_file_is_part_of_the_export(vsphere, tmp_path):
    step = ExampleStep()
    options = ExportOptions(vm_path=APP01, output_dir=tmp_path / "out")
    result = export_vm(options, VCenterTarget.from_env(govc_environment(vsphere)), steps=(*STEPS, step))
    assert (tmp_path / "out" / "app01.xml").read_text() == "<domain>app01</domain>\n"
    assert "app01.xml" in result.artifacts
    assert step.saw_session is None  # it runs after the vCenter session closed


def test_a_failing_new_step_leaves_nothing_and_restores_the_previous_export(vsphere, tmp_path):
    target = VCenterTarget.from_env(govc_environment(vsphere))
    out = tmp_path / "out"
    export_vm(ExportOptions(vm_path=APP01, output_dir=out), target, steps=(*STEPS, ExampleStep()))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ExportError, match="domain step failed"):
        export_vm(
            ExportOptions(vm_path=APP01, output_dir=out, overwrite=True),
            target,
            steps=(*STEPS, ExampleStep(fail=True)),
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
