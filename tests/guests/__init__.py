"""Tiny real guests for the boot tests, and a runner that boots a libvirt domain in QEMU.

``build`` makes two bootable disk images (BIOS + syslinux, EFI + a unified kernel image) from
Debian's kernel and busybox, cached per machine; ``boot`` runs ``qemu-system-x86_64`` with
exactly the hardware a libvirt domain XML describes and returns what the guest printed on its
serial console.
"""
