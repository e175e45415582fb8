"""Login throttling: wrong passwords lock a username out a while; API tokens are unaffected."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

RIGHT = "alice-pass-123"


def log_in(client, password, username="alice", **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def fail_until_locked(client, **extra):
    responses = [log_in(client, f"wrong-{n}", **extra) for n in range(settings.AXES_FAILURE_LIMIT)]
    assert [r.status_code for r in responses[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    return responses[-1]


def test_the_login_page_says_the_account_is_locked_and_for_how_long(client, alice):
    locked = fail_until_locked(client)
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed logins for this account." in html
    assert "locked for 15 minutes; try again then." in html
    # Still a usable login page, with the username filled in.
    assert 'name="password"' in html and 'value="alice"' in html

    # Even the right password is refused now, and nobody is signed in.
    again = log_in(client, RIGHT)
    assert again.status_code == 429
    assert "Too many failed logins" in again.content.decode()
    assert client.get("/traces/").status_code == 302


def test_after_the_cool_off_the_right_password_logs_in(client, alice):
    fail_until_locked(client)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    response = log_in(client, RIGHT)
    assert response.status_code == 302 and response["Location"] == "/traces/"


def test_a_success_before_the_limit_starts_the_count_again(client, alice):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, f"wrong-{n}").status_code == 200
    assert log_in(client, RIGHT).status_code == 302
    client.post(reverse("logout"))
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, f"wrong-again-{n}").status_code == 200
    assert log_in(client, RIGHT).status_code == 302


def test_the_lock_holds_for_that_username_from_that_address_only(client, alice, django_user_model):
    django_user_model.objects.create_user("bob", "bob@example.com", "bob-pass-123")
    fail_until_locked(client, REMOTE_ADDR="203.0.113.7")
    assert log_in(client, RIGHT, REMOTE_ADDR="203.0.113.7").status_code == 429
    assert log_in(client, "bob-pass-123", "bob", REMOTE_ADDR="203.0.113.7").status_code == 302
    client.post(reverse("logout"))
    assert log_in(client, RIGHT, REMOTE_ADDR="198.51.100.2").status_code == 302


def test_the_admin_login_is_throttled_too(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-123")
    admin_login = reverse("admin:login")
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(admin_login, {"username": "root", "password": f"wrong-{n}"})
    locked = client.post(admin_login, {"username": "root", "password": "wrong-last"})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    refused = client.post(admin_login, {"username": "root", "password": "root-pass-123"})
    assert refused.status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302


def test_an_api_token_still_works_for_a_locked_out_user(client, alice, api_client):
    assert fail_until_locked(client).status_code == 429
    response = api_client.get("/api/traces", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "results" in response.json()
