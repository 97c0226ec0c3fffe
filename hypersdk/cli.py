"""Console scripts: ``hyperexport`` and ``hyperctl``.

Both start as little as they need: ``hyperctl`` builds its parser without Django and loads the
ORM only for the local services; a direct ``hyperexport`` needs settings but no app. A reader
closing the pipe ends either quietly (``cli.pipes``).
"""

from __future__ import annotations

import os
import sys

# hyperexport's flags that hand the work to the daemon; they need the ORM (local services).
DAEMON_FLAGS = frozenset(
    {
        "use-daemon",
        "daemon-watch",
        "daemon-list",
        "daemon-status",
        "daemon-schedule",
        "daemon-url",
        "token-file",
    }
)


def uses_daemon(argv: list[str]) -> bool:
    """Whether a daemon flag (``-flag``, ``--flag`` or ``--flag=value``) is among the arguments."""
    return any(arg.startswith("-") and arg.lstrip("-").split("=", 1)[0] in DAEMON_FLAGS for arg in argv)


def refuse_undecodable(prog: str, argv: list[str]) -> None:
    """Exit 2 with one line when an argument is not valid UTF-8 (Python keeps such bytes as lone
    surrogates): no VM path, directory or option the daemon, the manifest or a libvirt domain
    holds can carry them, and refusing here beats a traceback after the download."""
    for argument in argv:
        if any("\udc80" <= char <= "\udcff" for char in argument):
            shown = argument.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            sys.stderr.write(f"{prog}: error: argument '{shown[:200]}' is not valid UTF-8\n")
            sys.exit(2)


def hyperexport() -> None:
    """A direct export needs neither the ORM nor the app registry, so skip ``django.setup()``.

    Loading every app (admin, DRF, Celery beat) costs about a second before the first byte
    moves; the command only needs settings, which load lazily. The daemon modes do need the
    apps (the local services are the ORM), so they get the full start-up.
    """
    from cli.pipes import quiet_on_broken_pipe

    refuse_undecodable("hyperexport", sys.argv[1:])
    with quiet_on_broken_pipe("hyperexport"):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hypersdk.settings")
        from hypersdk.lib.env import load_settings_or_exit, setup_django_or_exit

        if uses_daemon(sys.argv[1:]):
            setup_django_or_exit()
        else:
            load_settings_or_exit()
        from cli.management.commands.hyperexport import Command

        Command().run_from_argv(["hyperexport", "hyperexport", *sys.argv[1:]])


def hyperctl() -> None:
    from cli.hyperctl.main import main
    from cli.pipes import quiet_on_broken_pipe

    refuse_undecodable("hyperctl", sys.argv[1:])
    with quiet_on_broken_pipe("hyperctl"):
        code = main()
    sys.exit(code)
