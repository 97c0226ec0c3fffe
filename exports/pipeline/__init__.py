"""The export pipeline, one module per step, in the order they run:

connect → inventory (find the VM, power state) → lease (ExportVm, keepalive) → download
(one pass: stream, hash, fsync, rename) → descriptor (OVF + .mf) → package (OVA) →
manifest (Artifact Manifest v1.0) → convert (hyper2kvm or qemu-img) → verify.

``run.export_vm`` drives them; every surface (CLI, daemon, schedules) calls it.
"""
