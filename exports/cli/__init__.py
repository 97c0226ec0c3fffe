"""The daemon side of the CLIs (``hyperctl``, ``hyperexport --use-daemon``).

``backends`` reaches the jobs either in-process (local services, the daemon's database) or over
the REST API; ``render`` turns their plain dicts into lines; ``follow`` polls a job (watch, logs
-f); ``hyperctl/`` holds one small module per ``hyperctl`` subcommand.
"""
