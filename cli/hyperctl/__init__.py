"""``hyperctl``'s subcommands, one module each.

A module offers ``register(subparsers, parents)``, which adds its parser and sets
``run(backend, opts, terminal) -> exit status`` as its default (with ``needs_backend=False``,
the backend is None: nothing to connect to); a group such as ``schedules``
adds its own subparsers the same way. A new subcommand is one more entry in ``SUBCOMMANDS``.
"""

from __future__ import annotations

from cli.hyperctl import cancel, completion, logs, query, schedules, status, vms, watch, webhooks

SUBCOMMANDS = (query, status, watch, logs, cancel, schedules, webhooks, vms, completion)
