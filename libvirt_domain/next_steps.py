"""What an operator runs after an export wrote a domain: ``virsh define <file>`` then
``virsh start <name>``, as the job page and the CLIs print them."""

from __future__ import annotations

import shlex

__all__ = ["next_commands"]


def next_commands(
    path: str, name: str, defined_at: str | None = None, connect: str | None = None
) -> list[str]:
    """The commands, each ready to paste into a shell (arguments quoted where they need it).

    ``defined_at``: the URI the export defined the domain at (``-define``), which leaves only
    ``virsh -c <uri> start <name>``; ``connect``: the URI a define was asked at but refused,
    which the commands name; without a ``name`` (an older report), only the define.
    """
    if defined_at:
        return [f"virsh -c {shlex.quote(defined_at)} start {shlex.quote(name)}"] if name else []
    virsh = f"virsh -c {shlex.quote(connect)}" if connect else "virsh"
    commands = [f"{virsh} define {shlex.quote(path)}"]
    return commands + [f"{virsh} start {shlex.quote(name)}"] if name else commands
