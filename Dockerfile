# HyperSDK: hypervisord (the default: API, websockets, a Celery worker and beat, with SQLite and
# an embedded Redis in /var/lib/hypersdk) and the one-shot CLIs (`docker run IMAGE hyperexport ...`).
FROM python:3.11-slim-bookworm

# qemu-img converts and verifies disks; curl for health checks; tini reaps orphans as PID 1
# and forwards signals.
RUN apt-get update \
    && apt-get install -y --no-install-recommends qemu-utils curl tini \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /var/lib/hypersdk hypersdk
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && python -m compileall -q hypersdk exports schedules webhooks \
    && chmod 755 deploy/docker-entrypoint.sh

ENV HYPERSDK_DATA_DIR=/var/lib/hypersdk \
    PYTHONUNBUFFERED=1
USER hypersdk
VOLUME ["/var/lib/hypersdk", "/exports"]
EXPOSE 8080

# `hypervisord ...` migrates, creates the admin user once, then runs the daemon; any other
# command (hyperexport, hyperctl, celery, sh) runs as given.
ENTRYPOINT ["tini", "--", "/app/deploy/docker-entrypoint.sh"]
CMD ["hypervisord", "--listen", "0.0.0.0:8080"]
