"""Fixtures shared by every test in every app: named users and signed-in clients.

alice is a signed-in member, bob a second user, and anonymous callers have no
account at all.
"""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

# Real processes for tests: a qcluster worker and the gunicorn web server.
pytest_plugins = ["tests.worker", "tests.live_server"]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-pass-123")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def api_client(alice):
    """An API client authenticated with alice's DRF token."""
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=alice)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


@pytest.fixture
def anon_api_client():
    return APIClient()


@pytest.fixture
def sync_tasks(monkeypatch, django_capture_on_commit_callbacks):
    """Run django-q2 tasks in the calling process, as soon as they are queued."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    return django_capture_on_commit_callbacks


@pytest.fixture
def test_scorers(settings):
    """The built-in scorers plus the test ones of scoring/tests/worker_scorers.py."""
    settings.TRACESCORE_SCORERS = [*settings.TRACESCORE_SCORERS, "scoring.tests.worker_scorers"]
    settings.TRACESCORE_SCORER_TIMEOUT = 0.5
