"""Settings for examsite.

Everything comes from the environment, with safe local defaults: SQLite, the in-memory channel layer and the
in-process inference pool unless DATABASE_URL and REDIS_URL say otherwise. The helpers are strict on purpose
(after healthchecks): a typo in a boolean is a start-up error, not a silent False.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    "accounts",
    "exams",
    "proctoring",
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
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
        "timeout": envint("DB_POOL_TIMEOUT_S", "10"),
    }
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
MODEL_PACK = os.getenv("MODEL_PACK", "default")
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
# Seconds a frame may take in the pool before it counts as a server error (never against the student) and a hung
# local worker is replaced.
INFERENCE_TIMEOUT_S = envint("INFERENCE_TIMEOUT_S", "5")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_ROUTES = {"proctoring.tasks.*": {"queue": "inference"}}
# Each prefork child loads the model pack at start (worker_process_init), which takes 5-15 s on 2 cores; Celery's
# default of 4 s would kill and respawn the child forever.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = envint("CELERY_WORKER_PROC_ALIVE_TIMEOUT", "120")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", "false" if DEBUG else "true")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
