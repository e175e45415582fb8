"""DEBUG error pages (``make run`` turns DEBUG on) never show a password or a key."""

import sys

import pytest
from django.test import RequestFactory
from django.views.debug import technical_500_response

REDIS_PASSWORD = "hunter2-redis-pw"
DB_PASSWORD = "pg-secret-pw"
JUDGE_KEY = "sk-judge-secret-key"


@pytest.fixture
def secret_settings(settings):
    settings.DEBUG = True
    settings.REDIS_URL = f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0"
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": settings.REDIS_URL}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": [f"redis://worker:{REDIS_PASSWORD}@cache.internal:6379/1"],
        }
    }
    settings.TRACESCORE_JUDGE_API_KEY = JUDGE_KEY
    return settings


def error_page() -> str:
    # A runserver-style request: its META carries the process environment.
    request = RequestFactory().get(
        "/traces/",
        DATABASE_URL=f"postgres://tracescore:{DB_PASSWORD}@db.internal:5432/tracescore",
        REDIS_URL=f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0",
    )
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    return response.content.decode()


def test_a_debug_error_page_masks_url_passwords_and_keys(secret_settings):
    html = error_page()
    assert "RuntimeError" in html  # it is the technical page
    for secret in (REDIS_PASSWORD, DB_PASSWORD, JUDGE_KEY):
        assert secret not in html
    # The rest of each URL still says which server is meant.
    assert "redis://:********************@redis.internal:6379/0" in html
    assert "postgres://tracescore:********************@db.internal:5432/tracescore" in html
    assert "cache.internal:6379/1" in html


def test_urls_without_a_password_are_shown_as_they_are(secret_settings):
    secret_settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    assert "redis://127.0.0.1:6379/0" in error_page()
