"""``hyperctl vms list|info``: the VMs of a vCenter (the daemon's inventory), found without
knowing their paths."""

from __future__ import annotations

import json
from typing import Any

from cli import render_vms
from cli.backends import JobsBackend
from cli.flags import add_page_flags, chosen_page, go_flag, note_more_pages
from cli.hyperctl.paged_resources import add_resource_group
from cli.terminal import Terminal
from inventory.records import POWER_STATES

VCENTER_HELP = "a vCenter's name in the daemon (default: the daemon's GOVC_*; locally, this shell's GOVC_*)"


def register(subparsers, parents) -> None:
    actions = add_resource_group(subparsers, parents, "vms", help="the vCenter's VMs: list, info")

    listing = actions.add_parser(
        "list",
        parents=parents,
        help="VMs by inventory path, filtered: a page of 50, or -all",
        description="e.g. hyperctl vms list -q web -power on; hyperctl vms list -folder /dc/vm/prod -quiet",
    )
    go_flag(listing, "q", metavar="TEXT", default="", help="part of the name or inventory path (any case)")
    go_flag(listing, "folder", metavar="PATH", default="", help="an inventory folder: the VMs in it or below")
    go_flag(listing, "power", dest="power_state", choices=POWER_STATES, default="", help="power state")
    go_flag(
        listing, "guest", metavar="TEXT", default="", help="part of the guest OS (configured or detected)"
    )
    go_flag(listing, "vcenter", metavar="NAME", help=VCENTER_HELP)
    add_page_flags(listing, "VMs")
    go_flag(
        listing, "refresh", action="store_true", help="read the inventory from vCenter again, not the cache"
    )
    output = listing.add_mutually_exclusive_group()
    go_flag(output, "json", action="store_true", help="print the API's JSON (the page's VMs)")
    go_flag(output, "quiet", action="store_true", help="print only the VMs' inventory paths, one a line")
    listing.set_defaults(run=run_list)

    info = actions.add_parser(
        "info",
        parents=parents,
        help="everything about one VM: hardware, disks, NICs, drives, snapshots",
        description="e.g. hyperctl vms info /dc/vm/prod/web01; hyperctl vms info vm-42",
    )
    info.add_argument(
        "ref", metavar="PATH-or-MOREF", help="inventory path (a '/' in a name written %%2f) or moref"
    )
    go_flag(info, "vcenter", metavar="NAME", help=VCENTER_HELP)
    go_flag(info, "refresh", action="store_true", help="read the VM from vCenter again, not the cache")
    go_flag(info, "json", action="store_true", help="print the API's JSON (every field)")
    info.set_defaults(run=run_info)


def run_list(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    listing = backend.list_vms(
        vcenter=opts["vcenter"],
        q=opts["q"],
        folder=opts["folder"],
        power_state=opts["power_state"],
        guest_os=opts["guest"],
        page=chosen_page(opts),
        refresh=opts["refresh"],
    )
    vms = listing["results"]
    if opts["json"]:
        lines = [json.dumps(vms, indent=2)]
    elif opts["quiet"]:
        lines = render_vms.vm_paths(vms)
    else:
        lines = render_vms.vm_table(vms) if vms else ["no VMs"]
    for line in lines:
        terminal.say(line)
    if not (opts["json"] or opts["quiet"]):
        terminal.note(render_vms.cached_note(listing))
    note_more_pages(listing, "VMs", terminal)
    return 0


def run_info(backend: JobsBackend, opts: dict[str, Any], terminal: Terminal) -> int:
    vm = backend.get_vm(opts["ref"], vcenter=opts["vcenter"], refresh=opts["refresh"])
    lines = [json.dumps(vm, indent=2)] if opts["json"] else render_vms.vm_info_lines(vm)
    for line in lines:
        terminal.say(line)
    return 0
