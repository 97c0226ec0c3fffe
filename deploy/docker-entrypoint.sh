#!/bin/sh
# `hypervisord [flags]` (the image's default) migrates, creates the admin user once (its
# password and API token go to the log that once), then runs the daemon. Any other command,
# e.g. `hyperexport -vm ...`, runs as given.
set -eu
if [ "${1:-}" = hypervisord ]; then
    shift
    python /app/manage.py migrate --noinput
    python /app/manage.py bootstrap_admin
    exec python /app/manage.py hypervisord "$@"
fi
exec "$@"
