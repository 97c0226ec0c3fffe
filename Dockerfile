# HyperSDK: hypervisord (the default: API, websockets, a Celery worker and beat, with SQLite and
# an embedded Redis in /var/lib/hypersdk) and the one-shot CLIs (`docker run IMAGE hyperexport ...`).
FROM python:3.11-slim-bookworm

# qemu-img converts and verifies disks; libvirt-clients (virt-xml-validate, virsh) and osinfo-db
# write the libvirt domain (-libvirt); curl for health checks; tini reaps orphans as PID 1
# and forwards signals.
RUN apt-get update \
    && apt-get install -y --no-install-recommends qemu-utils libvirt-clients osinfo-db curl tini \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /var/lib/hypersdk hypersdk
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# Installed in place (-e), as `make run` does: manage.py, the console scripts and
# `celery -A hypersdk` all import the same /app, with its templates and static files.
COPY . .
RUN pip install --no-cache-dir --no-deps -e . \
    && python -m compileall -q hypersdk api_tokens exports schedules webhooks dashboard metrics cli \
    && chmod 755 deploy/docker-entrypoint.sh \
    && mkdir -p /exports && chown hypersdk:hypersdk /exports

# Add the names clients use to HYPERSDK_ALLOWED_HOSTS (`-e HYPERSDK_ALLOWED_HOSTS=...`);
# the defaults answer only to localhost, which is what the health check uses.
ENV HYPERSDK_DATA_DIR=/var/lib/hypersdk \
    PYTHONUNBUFFERED=1
USER hypersdk
VOLUME ["/var/lib/hypersdk", "/exports"]
EXPOSE 8080
# /health needs no token; `docker stop -t 30` leaves hypervisord its 20 s grace.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health || exit 1

# `hypervisord ...` migrates, creates the admin user once, then runs the daemon; any other
# command (hyperexport, hyperctl, celery, sh) runs as given.
ENTRYPOINT ["tini", "--", "/app/deploy/docker-entrypoint.sh"]
CMD ["hypervisord", "--listen", "0.0.0.0:8080"]
