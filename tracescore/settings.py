"""Settings for tracescore, read from the environment.

Every deployment knob lives here and is documented in README.md:
DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, plus the
TRACESCORE_* settings of the product itself.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (for a local run, set DEBUG=true)."
        )
    # Local runs: generate a key once and keep it in an ignored file, so sessions
    # survive restarts without a secret ever living in the repository.
    key_file = BASE_DIR / ".secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_filters",
    "django_htmx",
    "django_q",
    "template_partials",
    "tracescore",
    "observability",
    "scoring",
]

MIDDLEWARE = [
    "tracescore.middleware.RejectNulInPath",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# WhiteNoise serves static files from gunicorn: in production from STATIC_ROOT
# (`manage.py collectstatic`), in a local run straight from the app folders.
MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

ROOT_URLCONF = "tracescore.urls"

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

WSGI_APPLICATION = "tracescore.wsgi.application"

# Database: DATABASE_URL, default an embedded SQLite file shared by the web
# process and the worker (WAL, immediate transactions and a lock timeout keep
# the two from tripping over each other's writes).
DEFAULT_SQLITE_PATH = BASE_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# Bounds, in seconds, on a PostgreSQL that is down or stops answering: requests
# then fail fast (ingest answers 503 + Retry-After) instead of hanging. 0 = none.
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 5)
DATABASE_STATEMENT_TIMEOUT = env_int("DATABASE_STATEMENT_TIMEOUT", 20)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    if DATABASE_CONNECT_TIMEOUT:
        _options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
        # Sent data unacknowledged this long (a network partition) fails the query.
        _options.setdefault("tcp_user_timeout", DATABASE_CONNECT_TIMEOUT * 1000)
    if DATABASE_STATEMENT_TIMEOUT:
        _options.setdefault("options", f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT * 1000}")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so a worker process can share the test database.
    sqlite_name = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {
        "NAME": str(sqlite_name.with_name(f"test-{sqlite_name.stem}.sqlite3"))
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/traces/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "tracescore" / "static"]

# Request bodies: OTLP exports can be large; the ingest view enforces its own limit.
TRACESCORE_INGEST_MAX_BODY_BYTES = env_int("TRACESCORE_INGEST_MAX_BODY_BYTES", 32 * 1024 * 1024)
# A span that lasts longer than this is rejected alone (its clock is wrong).
TRACESCORE_INGEST_MAX_SPAN_SECONDS = env_int("TRACESCORE_INGEST_MAX_SPAN_SECONDS", 24 * 3600)
DATA_UPLOAD_MAX_MEMORY_SIZE = TRACESCORE_INGEST_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous call gets 401 with WWW-Authenticate.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["tracescore.api_lists.ApiFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tracescore.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "tracescore.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "tracescore.api_lists.ApiPageNumberPagination",
    "PAGE_SIZE": 50,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "tracescore API",
    "DESCRIPTION": "Traces in over OpenTelemetry, scorers run over them in the background.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SpanStatusEnum": "observability.choices.SpanStatus",
        "ScoreStatusEnum": "scoring.choices.ScoreStatus",
    },
}

# Background work: django-q2 on Redis when REDIS_URL is set, otherwise on the
# database (ORM broker) with a short poll. `timeout` must stay below `retry`,
# or a slow task would be handed to a second worker while the first still runs.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
Q_CLUSTER = {
    "name": os.environ.get("TRACESCORE_QUEUE_NAME", "tracescore"),
    "workers": env_int("TRACESCORE_WORKERS", 2),
    "timeout": env_int("TRACESCORE_TASK_TIMEOUT", 120),
    "retry": env_int("TRACESCORE_TASK_RETRY", 180),
    "max_attempts": env_int("TRACESCORE_TASK_MAX_ATTEMPTS", 3),
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = env_float("TRACESCORE_QUEUE_POLL", 0.2)
if env_bool("TRACESCORE_SYNC_TASKS", False):
    Q_CLUSTER["sync"] = True

# Scorers: dotted paths of Scorer classes/instances, or of modules that register
# scorers with @register_scorer. Users append their own.
TRACESCORE_SCORERS = [
    "scoring.scorers.code",
    "scoring.scorers.judges",
    *env_list("TRACESCORE_EXTRA_SCORERS"),
]
# Per-trace limit for one scorer run, in seconds (below the task timeout).
TRACESCORE_SCORER_TIMEOUT = env_float("TRACESCORE_SCORER_TIMEOUT", 60)
# How long a worker holds a score it started. Longer than django-q2 lets a task
# run (it kills the worker past the task timeout), so an expired lease means
# that worker is gone and the sweep may hand the score on.
TRACESCORE_SCORE_LEASE = env_float("TRACESCORE_SCORE_LEASE", Q_CLUSTER["timeout"] + 30)
# A score no worker has started is queued again when it has waited this long
# and the broker has nothing left waiting (its task was lost); never failed.
TRACESCORE_STALE_AFTER = env_float("TRACESCORE_STALE_AFTER", Q_CLUSTER["timeout"] + 60)
TRACESCORE_LATENCY_BUDGET_MS = env_int("TRACESCORE_LATENCY_BUDGET_MS", 10_000)

# LLM judge: any OpenAI-compatible chat-completions endpoint.
TRACESCORE_JUDGE_BASE_URL = os.environ.get("TRACESCORE_JUDGE_BASE_URL", "").strip()
TRACESCORE_JUDGE_API_KEY = os.environ.get("TRACESCORE_JUDGE_API_KEY", "").strip()
TRACESCORE_JUDGE_MODEL = os.environ.get("TRACESCORE_JUDGE_MODEL", "").strip()
# Per call; all calls and retries of one score also stop at the scorer timeout.
TRACESCORE_JUDGE_TIMEOUT = env_float("TRACESCORE_JUDGE_TIMEOUT", 15)
TRACESCORE_JUDGE_MAX_RETRIES = env_int("TRACESCORE_JUDGE_MAX_RETRIES", 2)
# Judges defined without Python: {"id": {"name", "description", "prompt", "rubric"}}.
TRACESCORE_CUSTOM_JUDGES: dict = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
