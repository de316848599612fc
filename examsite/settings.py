"""Settings for examsite.

Everything comes from the environment, with safe local defaults: SQLite, the in-memory channel layer and the
in-process inference pool unless DATABASE_URL and REDIS_URL say otherwise. The helpers are strict on purpose
(after healthchecks): a typo in a boolean is a start-up error, not a silent False.
"""

from __future__ import annotations

import os
from pathlib import Path

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: str) -> int:
    value = os.getenv(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def envsecret(name: str, default: str | None = None) -> str | None:
    """Read NAME, or the contents of the file named by NAME_FILE (Docker and systemd secrets)."""
    path = os.getenv(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.getenv(name, default)


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "true")

SECRET_KEY = envsecret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (or set SECRET_KEY_FILE)")
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # daphne first, so that `runserver` serves ASGI (HTTP and WebSockets).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "accounts",
    "exams",
    "proctoring",
    # Review (issue 10): decisions, re-scoring, the timeline, the identity queue and the live monitor; builds on
    # proctoring, which never imports it.
    "proctoring.review",
    # LTI 1.3 (issue 13): django-lti's registrations, deployments, keys and launch records, and the exams' side of
    # it (exams/lti: resource links to exams, launches, roster, grades, the proctoring messages).
    "lti_tool",
    "exams.lti",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the ASGI processes: collected ones in production, the finders' when DEBUG is on
    # (daphne, unlike runserver, serves no static files by itself).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "examsite.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # After the two above, so that it sees each response first: lets the LMS origins in LTI_FRAME_ANCESTORS frame.
    "examsite.middleware.LmsFramingMiddleware",
    "examsite.middleware.PrivatePagesMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into accounts.throttle.locked_out's page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "examsite.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "examsite.wsgi.application"
ASGI_APPLICATION = "examsite.asgi.application"

# Database: SQLite by default, PostgreSQL (or anything dj-database-url reads) from DATABASE_URL.
import dj_database_url  # noqa: E402

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", "0"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool("DB_POOL", "true"):
    # A psycopg connection pool per server process. Under ASGI every call through database_sync_to_async closes
    # the connection afterwards (CONN_MAX_AGE cannot help: threads come and go), and opening a PostgreSQL
    # connection per frame was 29% of the database thread's time at 120 students (issue 8). With the pool a close
    # hands the connection back instead. Django's pool needs CONN_MAX_AGE 0.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": envint("DB_POOL_MIN", "2"),
        "max_size": envint("DB_POOL_MAX", "12"),
        # Under daphne's 5 s handshake timeout: during a database outage a connect waits this long for a connection
        # before it is refused cleanly (4503), and a longer wait would let daphne drop the handshake instead.
        "timeout": envint("DB_POOL_TIMEOUT_S", "4"),
    }
    # Check each connection as it leaves the pool (Django passes psycopg's check_connection, one round trip): after a
    # database restart or outage the pooled connections are dead, and handing them out failed the first requests
    # after the recovery.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The in-process worker pool and the ASGI server write from several threads; wait for the lock instead of
    # failing at once, and use WAL so readers never block the writer. IMMEDIATE transactions take the write lock at
    # BEGIN, so two threads' read-then-write transactions wait for each other instead of one failing at once with
    # "database is locked" (a deferred transaction cannot wait to upgrade its read lock).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    # A file, not Django's shared in-memory database: browser tests serve concurrent requests from several
    # threads, and one shared in-memory connection interleaves their savepoints.
    DATABASES["default"]["TEST"] = {"NAME": os.getenv("TEST_SQLITE_NAME", str(BASE_DIR / "test-db.sqlite3"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes; accounts/throttle.py). After LOGIN_FAILURE_LIMIT failures for one username, or
# from one client address, sign-in is paused for LOGIN_COOLOFF_MINUTES, doubling with each failure during the pause up
# to LOGIN_COOLOFF_MAX_MINUTES. Every attempt is recorded (admin: Axes) and logged. Behind a reverse proxy, set
# TRUSTED_PROXY_COUNT to the number of proxies that append to X-Forwarded-For; otherwise the header is ignored.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", "5")
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Log the username and address of each attempt (the admin lists them anyway); passwords are never logged.
AXES_SENSITIVE_PARAMETERS: list[str] = []
AXES_COOLOFF_TIME = "accounts.throttle.cool_off"
AXES_LOCKOUT_CALLABLE = "accounts.throttle.locked_out"
AXES_CLIENT_IP_CALLABLE = "accounts.throttle.client_ip"
LOGIN_COOLOFF_MINUTES = envint("LOGIN_COOLOFF_MINUTES", "1")
LOGIN_COOLOFF_MAX_MINUTES = envint("LOGIN_COOLOFF_MAX_MINUTES", "60")
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", "0")

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", BASE_DIR / "staticfiles"))

# Private data (snapshots, model packs). Never under STATIC_ROOT or a public MEDIA_URL: evidence is served only
# through views that check who is asking.
DATA_DIR = Path(os.getenv("DATA_DIR", BASE_DIR / "var"))
PRIVATE_STORAGE_DIR = Path(os.getenv("PRIVATE_STORAGE_DIR", DATA_DIR / "private"))
MODEL_DIR = Path(os.getenv("MODEL_DIR", DATA_DIR / "models"))
# default-int8: the default pack's models, its phone detector in INT8 with its close calls decided in f32 (the
# default pack's decisions at 2-3 ms less of a worker's CPU a frame; README, Model packs). MODEL_PACK=default runs
# the f32/bf16 detector alone and needs no quantisation at install.
MODEL_PACK = os.getenv("MODEL_PACK", "default-int8")
# Days proctoring evidence is kept after a session ends: the consent notice states it, `manage.py purge_evidence`
# enforces it.
PROCTORING_RETENTION_DAYS = envint("PROCTORING_RETENTION_DAYS", "90")

# Redis: when REDIS_URL is set it carries the channel layer and the Celery broker; when unset, the in-memory
# layer and the in-process pool.
REDIS_URL = os.getenv("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 defaults to a 5 s socket timeout, the same as channels-redis' 5 s blocking pop: the
            # read can time out just before the pop returns, and the consumer dies. The read must outlast the pop.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 200, "expiry": 10},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds what must be shared by every server process: the LTI login's state and nonce (a launch may reach
# another process than its login did) and the rate limits. Redis when REDIS_URL is set; else this process's memory,
# which is right for one process (`make demo`).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# Which inference pool the consumer hands frames to: "local" (worker processes inside the ASGI server) or
# "celery" (Celery workers on the `inference` queue, which needs REDIS_URL). "local" by default, so `make demo`
# needs nothing running.
INFERENCE_POOL = os.getenv("INFERENCE_POOL", "local")
# Worker processes of the local pool: one per core the server may use, each with one inference thread (measured in
# issue 8: on 2 cores, 2 processes of 1 thread beat 1 process of 2 threads and 1 of 1; the server and PostgreSQL
# fit in the gaps). Explicit thread counts, because every process spawning one thread per core makes them fight.
USABLE_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
INFERENCE_WORKERS = envint("INFERENCE_WORKERS", str(USABLE_CORES))
INFERENCE_THREADS = envint("INFERENCE_THREADS", "1")
# The inference workers' CPU priority, as nice (0-19): below the ASGI server's and PostgreSQL's, so that the serving
# path (handshakes, results, the monitor, the pool's own shedding) never waits for a core behind the models, which
# take whatever it leaves. When 200 students pressed Start in the same second while the workers loaded their models,
# the last READY came after 3.6-5.0 s at 0 and 2.8-4.5 s at 10 on a 2-core Xeon. 0 turns it off.
INFERENCE_NICE = envint("INFERENCE_NICE", "10")
# Seconds a frame may take in the pool before it counts as a server error (never against the student) and a hung
# local worker is replaced.
INFERENCE_TIMEOUT_S = envint("INFERENCE_TIMEOUT_S", "5")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_ROUTES = {"proctoring.tasks.*": {"queue": "inference"}, "housekeeping.*": {"queue": "housekeeping"}}
CELERY_IMPORTS = ["examsite.housekeeping"]

# Housekeeping (examsite/housekeeping.py): expire overdue attempts every HOUSEKEEPING_EVERY_S, purge evidence past
# retention daily. "inprocess" (a thread in each ASGI server), "beat" (Celery beat: one per deployment) or "off".
HOUSEKEEPING = os.getenv("HOUSEKEEPING", "inprocess")
if HOUSEKEEPING not in ("inprocess", "beat", "off"):
    raise ImproperlyConfigured(f"HOUSEKEEPING must be inprocess, beat or off, not {HOUSEKEEPING!r}")
HOUSEKEEPING_EVERY_S = envint("HOUSEKEEPING_EVERY_S", "60")
CELERY_BEAT_SCHEDULE = {
    "expire-overdue-attempts": {"task": "housekeeping.expire_attempts", "schedule": float(HOUSEKEEPING_EVERY_S)},
    "send-lms-grades": {"task": "housekeeping.send_lms_grades", "schedule": float(HOUSEKEEPING_EVERY_S)},
    "purge-evidence-past-retention": {"task": "housekeeping.purge_evidence", "schedule": 24 * 3600.0},
}
# Each prefork child loads the model pack at start (worker_process_init), which takes 5-15 s on 2 cores; Celery's
# default of 4 s would kill and respawn the child forever.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = envint("CELERY_WORKER_PROC_ALIVE_TIMEOUT", "120")

# Email (password reset, invitations): printed to the console unless EMAIL_HOST names an SMTP server.
EMAIL_HOST = os.getenv("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = envint("EMAIL_PORT", "587")
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "true")
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "exams@localhost")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", "false" if DEBUG else "true")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# LTI 1.3 (README, "Use it from your LMS"). An LMS shows the tool in an iframe: the origins allowed to frame these
# pages, comma-separated (for example "https://moodle.example.edu,https://canvas.example.edu"); none by default.
# Inside an iframe the session cookie is a third-party cookie, which needs SameSite=None and Secure (so TLS):
# LTI_EMBED=true sets both. Browsers that block third-party cookies still work: the launch then offers to continue
# in a new window.
LTI_FRAME_ANCESTORS = envlist("LTI_FRAME_ANCESTORS", "")
if envbool("LTI_EMBED", "false"):
    SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "None"
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True

# Deployments behind TLS (README, "Production settings"): redirect HTTP to HTTPS and send HSTS. Off unless set, so
# that a plain-HTTP install on a closed network still works; `check --deploy` is clean with the documented values.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "false")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "false")
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients): trust it for is_secure().
if envbool("SECURE_PROXY_SSL_HEADER", "false"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp). The pages use no inline script or style, so the policy is strict: everything
# from this origin; images also from data: URLs (evidence thumbnails) and blob: (webcam previews); 'self' in
# connect-src covers this origin's WebSockets (ws:/wss:) in every current browser (CSP level 3).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
