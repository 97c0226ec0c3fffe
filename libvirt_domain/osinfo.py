"""What osinfo-db (Debian ``osinfo-db``, ``/usr/share/osinfo``) knows of a VM's guest OS: does it
ship virtio drivers? vSphere names guest OSes by ``guestId`` (``debian11_64Guest``); osinfo-db
by short id (``debian11``): ``OSINFO_IDS`` maps the one to the other."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GuestOS", "guest_os"]


@dataclass(frozen=True)
class GuestOS:
    """``osinfo_id``: osinfo-db's short id ("" when unknown); ``virtio_block``/``virtio_net``:
    the OS lists virtio-blk / virtio-net among its devices (drivers in the box)."""

    osinfo_id: str
    name: str
    virtio_block: bool
    virtio_net: bool


def guest_os(guest_id: str) -> GuestOS | None:
    """osinfo-db's entry for vSphere's ``guest_id``; None when it maps to none, or osinfo-db
    is not installed."""
    raise NotImplementedError
