"""Settings for tracescore, read from the environment.

Every deployment knob lives here and is documented in README.md:
DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, plus the
TRACESCORE_* settings of the product itself. The production security
settings (cookies, proxy, HSTS, CSP, login throttling) are in docs/deploy.md.
"""

import json
import os
import secrets
from datetime import timedelta
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
    "axes",
    "csp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
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
    "tracescore.middleware.ContentSecurityPolicy",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
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
        # 0: a connection per request, closed when it ends. The web server runs
        # each request's view in a thread of its own (ASGI), where a persistent
        # connection would never be reused (docs/deploy.md).
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
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

# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

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
# An OTLP export with more spans is refused (413) once they are counted, before
# they are mapped or stored; see docs/performance.md for what one costs.
TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT = env_int("TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT", 50_000)

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
    # The schema and the docs are for signed-in users and token holders only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN,
    # so the docs work offline and under our Content-Security-Policy.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No call to the public validator service: the docs never leave this server.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
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
# Scores per worker task: claimed with one UPDATE, inputs read with a few
# queries, code scorers' results stored with a few statements. A worker that
# dies loses at most one chunk, which the sweep queues again.
TRACESCORE_SCORE_CHUNK = max(1, env_int("TRACESCORE_SCORE_CHUNK", 50))
# Scoring rules, live: a trace is finished when its root span arrived and no span
# of it arrived for this many seconds; then the live rules are matched against it.
TRACESCORE_LIVE_SETTLE_SECONDS = env_float("TRACESCORE_LIVE_SETTLE_SECONDS", 2)
# How long one live sweeper task keeps sweeping before a fresh task takes over
# (below the task timeout).
TRACESCORE_LIVE_SWEEPER_SECONDS = env_float(
    "TRACESCORE_LIVE_SWEEPER_SECONDS", max(Q_CLUSTER["timeout"] / 2, 1)
)

# LLM judge: any OpenAI-compatible chat-completions endpoint.
TRACESCORE_JUDGE_BASE_URL = os.environ.get("TRACESCORE_JUDGE_BASE_URL", "").strip()
TRACESCORE_JUDGE_API_KEY = os.environ.get("TRACESCORE_JUDGE_API_KEY", "").strip()
TRACESCORE_JUDGE_MODEL = os.environ.get("TRACESCORE_JUDGE_MODEL", "").strip()
# Per call; all calls and retries of one score also stop at the scorer timeout.
TRACESCORE_JUDGE_TIMEOUT = env_float("TRACESCORE_JUDGE_TIMEOUT", 15)
TRACESCORE_JUDGE_MAX_RETRIES = env_int("TRACESCORE_JUDGE_MAX_RETRIES", 2)
# Judge calls in flight at once in one worker process (a chunk's judge scores
# run side by side, up to this many).
TRACESCORE_JUDGE_CONCURRENCY = max(1, env_int("TRACESCORE_JUDGE_CONCURRENCY", 16))
# Requests and tokens per minute for the judge endpoint, shared by every
# worker through Redis when REDIS_URL is set (per process otherwise); 0 or
# empty: no limit. A call waits for its share, within its score's time limit.
TRACESCORE_JUDGE_RPM = max(0, env_int("TRACESCORE_JUDGE_RPM", 0))
TRACESCORE_JUDGE_TPM = max(0, env_int("TRACESCORE_JUDGE_TPM", 0))
# Judges defined without Python: {"id": {"name", "description", "prompt", "rubric"}}.
TRACESCORE_CUSTOM_JUDGES: dict = {}
# What a judge's tokens cost, in US dollars per million tokens, by model name (a
# dated model such as gpt-4o-mini-2024-07-18 takes the price of its longest
# listed prefix). TRACESCORE_JUDGE_PRICES, a JSON object of the same shape,
# adds models or overrides these: {"my-model": {"input": 0.2, "output": 0.8}}.
TRACESCORE_JUDGE_PRICES: dict[str, dict[str, float]] = {
    "gpt-5": {"input": 1.25, "output": 10.0},
    "gpt-5-mini": {"input": 0.25, "output": 2.0},
    "gpt-5-nano": {"input": 0.05, "output": 0.4},
    "gpt-4.1": {"input": 2.0, "output": 8.0},
    "gpt-4.1-mini": {"input": 0.4, "output": 1.6},
    "gpt-4.1-nano": {"input": 0.1, "output": 0.4},
    "gpt-4o": {"input": 2.5, "output": 10.0},
    "gpt-4o-mini": {"input": 0.15, "output": 0.6},
    "gpt-4-turbo": {"input": 10.0, "output": 30.0},
    "gpt-3.5-turbo": {"input": 0.5, "output": 1.5},
    "o3": {"input": 2.0, "output": 8.0},
    "o3-mini": {"input": 1.1, "output": 4.4},
    "o4-mini": {"input": 1.1, "output": 4.4},
}


def _judge_prices(text: str) -> dict[str, dict[str, float]]:
    try:
        prices = json.loads(text)
        if not isinstance(prices, dict):
            raise ValueError("not a JSON object")
        return {
            str(model): {"input": float(price["input"]), "output": float(price["output"])}
            for model, price in prices.items()
        }
    except (ValueError, TypeError, KeyError) as error:
        raise ImproperlyConfigured(
            "TRACESCORE_JUDGE_PRICES must be a JSON object of "
            '{"model": {"input": <USD per 1M tokens>, "output": <USD per 1M tokens>}}: '
            f"{error}"
        ) from None


if os.environ.get("TRACESCORE_JUDGE_PRICES", "").strip():
    TRACESCORE_JUDGE_PRICES |= _judge_prices(os.environ["TRACESCORE_JUDGE_PRICES"])
# Judge batch estimates count this many targets exactly; a larger selection is
# estimated from a sample of this size (docs/scorers.md, "Cost").
TRACESCORE_ESTIMATE_EXACT_LIMIT = env_int("TRACESCORE_ESTIMATE_EXACT_LIMIT", 100)
# Where tiktoken's encoding files are unpacked from the installed package (unless
# TIKTOKEN_CACHE_DIR is set); empty: a folder in the system's temporary directory.
TRACESCORE_TIKTOKEN_CACHE_DIR = os.environ.get("TRACESCORE_TIKTOKEN_CACHE_DIR", "").strip()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Production security, all from the environment (README "Production", docs/deploy.md).

# Cookies are Secure whenever DEBUG is off. SECURE_COOKIES=false is only for a
# deployment served over plain HTTP on a network you trust: browsers refuse to
# store a Secure cookie sent over http, so logging in would fail there.
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Behind a reverse proxy that terminates TLS: trust its X-Forwarded-Proto, so
# Django knows the request came over HTTPS (secure redirects, CSRF origin
# checks). Only set it when the proxy overwrites that header on every request.
TRUST_X_FORWARDED_PROTO = env_bool("TRUST_X_FORWARDED_PROTO", False)
if TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [
    # HSTS preloading is a decision for the owner of the whole domain (the list
    # takes apex domains only); SECURE_HSTS_PRELOAD=true sends it when they make it.
    "security.W021",
]

# Content-Security-Policy (django-csp 4): scripts and styles from our own static
# files only, no inline script or style anywhere, nothing from another origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Swagger UI and the admin draw some icons from data: URLs.
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Login throttling (django-axes, attempts kept in the database, so it works on
# SQLite and PostgreSQL and across every web worker). A username is locked out
# from the address that failed after LOGIN_FAILURE_LIMIT wrong passwords, for
# LOGIN_COOLOFF_MINUTES. API tokens never go through a login, so they are not
# affected. Behind a proxy the address is the proxy's: the lock is per username.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_CALLABLE = "tracescore.auth.lockout_response"

# DEBUG error pages hide passwords in URLs (REDIS_URL, DATABASE_URL, broker
# settings) and every *_KEY, SECRET, TOKEN and PASSWORD setting.
DEFAULT_EXCEPTION_REPORTER_FILTER = "tracescore.debug.SecretSafeExceptionReporterFilter"
