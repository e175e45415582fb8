"""POST /api/spans: the JSON batch API for clients without OpenTelemetry."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from observability.models import Span, Trace
from observability.services import create_ingest_key, revoke_ingest_key

pytestmark = pytest.mark.django_db

URL = "/api/spans"
TRACE_ID = "ab" * 16
ROOT_ID = "cd" * 8
CHILD_ID = "ef" * 8


# tests/conftest.py's fixtures do not reach app test packages, so the few used here are local.
@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-pass-123")


@pytest.fixture
def api_client(alice):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    return api


@pytest.fixture
def anon_api_client():
    return APIClient()


def root(**fields):
    return {
        "traceId": TRACE_ID,
        "spanId": ROOT_ID,
        "name": "answer-question",
        "spanType": "workflow_run",
        "startedAt": "2026-11-20T10:00:00Z",
        "endedAt": "2026-11-20T10:00:02.500Z",
        "input": {"question": "What is our refund window?"},
        "output": "30 days from delivery.",
        "attributes": {"customer.tier": "gold"},
        **fields,
    }


def child(**fields):
    return {
        "traceId": TRACE_ID,
        "spanId": CHILD_ID,
        "parentSpanId": ROOT_ID,
        "name": "retrieve policy",
        "spanType": "workflow_step",
        "startedAt": "2026-11-20T10:00:00.100Z",
        "endedAt": "2026-11-20T10:00:00.400Z",
        **fields,
    }


def test_the_url_lives_under_the_api():
    assert reverse("api-span-ingest") == URL


def test_a_batch_is_stored_and_answers_with_the_accepted_count(api_client):
    response = api_client.post(URL, {"spans": [child(), root()]}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "acceptedSpans": 2,
        "rejectedSpans": 0,
        "traceIds": [TRACE_ID],
        "rejected": [],
    }
    trace = Trace.objects.get(trace_id=TRACE_ID)
    assert (trace.name, trace.span_type, trace.span_count, trace.duration_ms) == (
        "answer-question",
        "workflow_run",
        2,
        2500,
    )
    stored = trace.spans.get(span_id=ROOT_ID)
    assert stored.input == {"question": "What is our refund window?"}
    assert stored.attributes == {"customer.tier": "gold"}
    assert trace.spans.get(span_id=CHILD_ID).parent_span_id == ROOT_ID


def test_the_same_batch_twice_changes_nothing_and_a_resent_span_updates(api_client):
    api_client.post(URL, {"spans": [child(), root()]}, format="json")
    api_client.post(URL, {"spans": [child(), root()]}, format="json")
    assert Span.objects.count() == 2

    api_client.post(URL, {"spans": [root(output="14 days.", error="judge unavailable")]}, "json")
    trace = Trace.objects.get(trace_id=TRACE_ID)
    assert trace.spans.get(span_id=ROOT_ID).output == "14 days."
    assert (trace.status, trace.error_message) == ("error", "judge unavailable")


def test_without_span_type_the_attributes_decide_it(api_client):
    span = root(spanType=None, attributes={"openinference.span.kind": "LLM"}, model="gpt-4o")
    del span["spanType"]
    api_client.post(URL, {"spans": [span]}, format="json")
    stored = Span.objects.get()
    assert (stored.span_type, stored.model) == ("llm_generation", "gpt-4o")


def test_invalid_spans_are_listed_with_field_messages_and_the_valid_ones_stored(api_client):
    bad = child(spanId="xyz", startedAt="yesterday", spanType="banana")
    response = api_client.post(URL, {"spans": [root(), bad, "not a span"]}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["acceptedSpans"], body["rejectedSpans"]) == (1, 2)
    first, second = body["rejected"]
    assert first["index"] == 1
    assert first["errors"]["spanId"] == ["Must be 16 hexadecimal characters."]
    assert "startedAt" in first["errors"]
    assert "spanType" in first["errors"]
    assert second == {"index": 2, "spanId": None, "errors": {"span": ["Not an object."]}}
    assert list(Span.objects.values_list("span_id", flat=True)) == [ROOT_ID]


def test_a_batch_with_no_valid_span_is_a_400_and_stores_nothing(api_client):
    response = api_client.post(
        URL, {"spans": [root(traceId="0" * 32), root(endedAt="2026-11-19T00:00:00Z")]}, "json"
    )
    assert response.status_code == 400
    body = response.json()
    assert "nothing was stored" in body["error"]
    assert body["rejected"][0]["errors"]["traceId"] == ["A trace id cannot be all zeros."]
    assert body["rejected"][1]["errors"]["endedAt"] == ["Must not be before startedAt."]
    assert not Trace.objects.exists()


@pytest.mark.parametrize("payload", [{}, {"spans": []}, {"spans": "nope"}, [root()]])
def test_a_malformed_envelope_is_a_400_with_a_message(api_client, payload):
    response = api_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()
    assert not Trace.objects.exists()


def test_an_ingest_key_may_send_spans_instead_of_a_user(anon_api_client):
    key, secret = create_ingest_key(name="batch")
    anon_api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert anon_api_client.post(URL, {"spans": [root()]}, format="json").status_code == 200

    revoke_ingest_key(key=key)
    response = anon_api_client.post(URL, {"spans": [child()]}, format="json")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked ingest key."}
    assert Span.objects.count() == 1


def test_a_signed_in_user_may_send_spans(client, alice):
    client.force_login(alice)
    response = client.post(URL, {"spans": [root()]}, content_type="application/json")
    assert response.status_code == 200


def test_anonymous_callers_get_401(anon_api_client):
    response = anon_api_client.post(URL, {"spans": [root()]}, format="json")
    assert response.status_code == 401
    assert not Trace.objects.exists()


def test_a_session_without_csrf_token_is_refused(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(URL, {"spans": [root()]}, format="json")
    assert response.status_code == 403
    assert not Trace.objects.exists()


def test_nul_characters_in_span_content_do_not_break_ingest(api_client):
    span = root(input={"q": "a\x00b"}, output="done\x00", attributes={"k": "\x00"})
    response = api_client.post(URL, {"spans": [span]}, format="json")
    assert response.status_code == 200
    stored = Span.objects.get()
    assert stored.input["q"].replace("\x00", "") == "ab"
    assert stored.output.replace("\x00", "") == "done"


def test_a_nul_character_in_a_name_is_a_field_error(api_client):
    response = api_client.post(URL, {"spans": [root(name="a\x00b")]}, format="json")
    assert response.status_code == 400
    assert response.json()["rejected"][0]["errors"]["name"] == ["Null characters are not allowed."]
