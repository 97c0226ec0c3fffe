"""The export lease refused, in error, or never ready: each ends the export with one clear line,
no retry (a new lease would fare the same) and nothing left in the output directory."""

from __future__ import annotations

import pytest

from exports.pipeline.connect import VCenterTarget, connect
from exports.pipeline.errors import LeaseError
from exports.pipeline.inventory import find_vm
from exports.pipeline.lease import ExportLease
from exports.pipeline.options import ExportOptions
from exports.pipeline.progress import CancelToken, NullReporter
from exports.pipeline.run import export_vm
from tests.conftest import APP01, govc_environment

pytestmark = pytest.mark.vsphere


@pytest.fixture
def lease_fault(vsphere, app01_seeds):
    """Arm the simulator's lease fault for the next ExportVm; disarmed after the test."""

    def arm(mode: str) -> None:
        vsphere.lease_fault(mode, count=1)

    yield arm
    vsphere.lease_fault("refuse", count=0)


def export_app01(vsphere, output):
    return export_vm(
        ExportOptions(vm_path=APP01, output_dir=output, retry_backoff=0.1),
        VCenterTarget.from_env(govc_environment(vsphere)),
        NullReporter(),
    )


@pytest.mark.parametrize(
    ("mode", "message", "new_leases"),
    [
        # refused: no lease was ever made, none retried
        (
            "refuse",
            f"vCenter refused the export of {APP01}: "
            "The operation is not allowed in the current state: another task is in progress.",
            [],
        ),
        (
            "error",
            "export lease failed: A general system error occurred: the host could not open the disks",
            [("error", "SystemError", 0)],
        ),
    ],
)
def test_a_refused_or_failed_lease_fails_with_vcenters_reason_and_is_not_retried(
    vsphere, lease_fault, tmp_path, mode, message, new_leases
):
    leases_before = len(vsphere.leases())
    lease_fault(mode)
    with pytest.raises(LeaseError) as failure:
        export_app01(vsphere, tmp_path / "out")
    assert str(failure.value) == message
    leases = vsphere.leases()[leases_before:]
    assert [(lease["state"], lease["error"], lease["bytes_served"]) for lease in leases] == new_leases
    assert not (tmp_path / "out").exists()


def test_a_lease_that_never_gets_ready_is_given_up_and_aborted(vsphere, lease_fault):
    # The simulator readies a healthy lease in 0.2 s: 2 s is ten times that, so only a lease
    # that never gets ready reaches the deadline.
    service_instance = connect(VCenterTarget.from_env(govc_environment(vsphere)))
    vm = find_vm(service_instance, APP01)
    leases_before = len(vsphere.leases())
    lease_fault("never-ready")
    with pytest.raises(LeaseError, match=r"^export lease not ready after 2s$"):
        ExportLease.open(vm, APP01, NullReporter(), CancelToken(), ready_timeout=2)
    (lease,) = vsphere.leases()[leases_before:]
    assert lease["aborted"] and lease["bytes_served"] == 0

    healthy = ExportLease.open(vm, APP01, NullReporter(), CancelToken(), ready_timeout=2)
    healthy.abort()  # the same wait takes a healthy lease: the deadline is not what failed above
