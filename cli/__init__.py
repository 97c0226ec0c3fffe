"""The operator's commands: ``hyperexport``, ``hyperctl`` and ``hypervisord``.

They sit above exports, schedules and webhooks and drive all three through their services.

``backends`` reaches the jobs either in-process (local services, the daemon's database) or over
the REST API; ``render`` turns their plain dicts into lines; ``follow`` polls a job (watch, logs
-f); ``hyperctl/`` holds one small module per ``hyperctl`` subcommand.
"""
