# HyperSDK: hyperexport / hyperctl and (with the daemon issue) hypervisord.
FROM python:3.11-slim-bookworm

# qemu-img converts and verifies disks; curl for health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends qemu-utils curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /var/lib/hypersdk hypersdk
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && python -m compileall -q hypersdk exports schedules webhooks

ENV HYPERSDK_DATA_DIR=/var/lib/hypersdk \
    PYTHONUNBUFFERED=1
USER hypersdk
VOLUME ["/var/lib/hypersdk", "/exports"]

ENTRYPOINT ["hyperexport"]
CMD ["--help"]
