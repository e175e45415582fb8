"""The foundation: login everywhere, API auth, health check, ingest bookkeeping."""

import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from observability.models import Trace
from tests.factories import agent_trace, new_trace_id, span

pytestmark = pytest.mark.django_db


def test_anonymous_trace_list_redirects_to_login(client):
    response = client.get("/traces/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_api_is_refused_with_json(anon_api_client):
    response = anon_api_client.get("/api/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "credentials were not provided" in response.json()["detail"]


def test_api_accepts_a_drf_token(api_client):
    response = api_client.get("/api/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "traces" in response.json()


def test_drf_create_token_command_makes_a_working_token(alice, anon_api_client, capsys):
    call_command("drf_create_token", "alice")
    token = re.search(r"token (\w+) for", capsys.readouterr().out).group(1)
    anon_api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anon_api_client.get("/api/traces").status_code == 200


def test_login_form_signs_in_and_shows_navigation(client, alice):
    response = client.post(
        reverse("login"), {"username": "alice", "password": "alice-pass-123"}, follow=True
    )
    page = response.content.decode()
    assert response.status_code == 200
    for label in ("Traces", "Scorers", "API", "Log out", "alice"):
        assert label in page


def test_wrong_password_is_refused(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_bootstrap_creates_admin_and_ingest_key_once(capsys, django_user_model):
    call_command("bootstrap", "--no-demo")
    first = capsys.readouterr().out
    assert "username: admin" in first
    assert "Authorization=Bearer tsk_" in first
    call_command("bootstrap", "--no-demo")
    second = capsys.readouterr().out
    assert "password" not in second.split("Forgot")[0]
    assert django_user_model.objects.filter(is_superuser=True).count() == 1


def test_bootstrap_uses_the_admin_password_from_the_environment(monkeypatch, client):
    monkeypatch.setenv("TRACESCORE_ADMIN_PASSWORD", "a-chosen-pass-9")
    call_command("bootstrap", "--no-demo")
    # Through the login form: django-axes checks every login against its request.
    response = client.post(reverse("login"), {"username": "admin", "password": "a-chosen-pass-9"})
    assert response.status_code == 302
    assert response["Location"] == "/traces/"


def test_trace_summary_is_right_when_children_arrive_before_the_root():
    from observability.services import ingest_spans

    trace_id = new_trace_id()
    root = span(trace_id, name="agent", span_type="agent_run", status="ok")
    child = span(
        trace_id, parent_span_id=root.span_id, name="tool", span_type="tool_call", status="error"
    )
    ingest_spans([child])
    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.has_root, trace.span_count, trace.status) == (False, 1, "error")
    ingest_spans([root])
    trace.refresh_from_db()
    assert (trace.has_root, trace.name, trace.span_type) == (True, "agent", "agent_run")
    assert (trace.span_count, trace.has_error) == (2, True)


def test_agent_trace_factory_builds_a_summarised_trace():
    trace = agent_trace()
    assert trace.span_count == 4
    assert trace.input_tokens == 330
    assert trace.status == "ok"
