"""The export pipeline: an ordered list of steps (``run.STEPS``), each in a module with one job:

inventory (find the VM, its facts; power state) → package (OVA name check) → plan (-dry-run) →
prepare (claim the output directory) → transfer (disks and NVRAM under a lease, retried) →
descriptor (OVF from vCenter) → package (.ovf + .mf, or .ova) → manifest (Artifact Manifest) →
convert (hyper2kvm or qemu-img) → verify.

``run.export_vm`` drives them; every surface (CLI, daemon, schedules) calls it. The steps'
shared interface is ``step.Step``; what a run created is recorded by ``output.OutputDir``.
See docs/architecture/pipeline.md.
"""
