"""A task queue that is away when a batch starts, and requests repeated with an Idempotency-Key.

The broker here is a real Redis client pointed at a loopback port where nothing
listens: what django-q2 sees when Redis is down.
"""

from __future__ import annotations

import json
import socket

import pytest
from django_q.conf import Conf

from scoring.models import Score, ScoringBatch
from tests.factories import agent_trace

pytestmark = pytest.mark.django_db(transaction=True)
BATCH = "/api/trace-scorers/batch"


@pytest.fixture
def redis_down(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setattr(Conf, "SYNC", False)


@pytest.mark.parametrize("traces", [3, 60], ids=["queued directly", "queued by a fan-out task"])
def test_a_batch_the_queue_cannot_take_answers_503_and_leaves_nothing_behind(
    api_client, redis_down, traces
):
    ids = [agent_trace().trace_id for _ in range(traces)]

    response = api_client.post(BATCH, {"scorerId": "completeness", "traceIds": ids}, format="json")

    assert response.status_code == 503, response.content
    assert "task queue is unavailable" in response.json()["detail"]
    assert response["Retry-After"] == "10"
    assert not ScoringBatch.objects.exists()
    assert not Score.objects.exists()


def test_run_scorer_in_the_modal_says_the_queue_is_away_and_starts_nothing(
    alice_client, redis_down
):
    trace = agent_trace()
    response = alice_client.post(
        "/batches/new/",
        {
            "selection": json.dumps({"traceIds": [trace.trace_id]}),
            "scorer_ids": ["completeness"],
            "scope": "trace",
            "action": "run",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 503
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "task queue is unavailable" in html
    assert not ScoringBatch.objects.exists()


def test_a_retried_request_with_the_same_idempotency_key_returns_the_first_batch(
    api_client, sync_tasks
):
    ids = [agent_trace().trace_id for _ in range(2)]
    body = {"scorerId": "completeness", "traceIds": ids}

    first = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    again = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    other = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="retry-2")

    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert other.json()["batchId"] != first.json()["batchId"]
    assert ScoringBatch.objects.count() == 2
    assert Score.objects.count() == 4


def test_the_same_key_from_another_user_starts_their_own_batch(
    api_client, django_user_model, sync_tasks
):
    from rest_framework.test import APIClient

    ids = [agent_trace().trace_id]
    body = {"scorerId": "completeness", "traceIds": ids}
    bob = APIClient()
    bob.force_authenticate(django_user_model.objects.create_user("bob"))

    mine = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    theirs = bob.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert mine.json()["batchId"] != theirs.json()["batchId"]


def test_an_idempotency_key_over_255_characters_is_a_400(api_client):
    trace = agent_trace()
    response = api_client.post(
        BATCH,
        {"scorerId": "completeness", "traceIds": [trace.trace_id]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k" * 256,
    )
    assert response.status_code == 400
    assert "255 characters" in response.json()["detail"]
    assert not ScoringBatch.objects.exists()


def test_after_the_queue_failed_the_same_key_can_start_the_batch(
    api_client, monkeypatch, sync_tasks
):
    ids = [agent_trace().trace_id]
    body = {"scorerId": "completeness", "traceIds": ids}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with monkeypatch.context() as down:
        down.setattr(Conf, "ORM", None)
        down.setattr(Conf, "REDIS", f"redis://127.0.0.1:{port}/0")
        down.setattr(Conf, "SYNC", False)
        failed = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert failed.status_code == 503

    retried = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert retried.status_code == 202
    assert "Idempotent-Replayed" not in retried
    assert ScoringBatch.objects.count() == 1


def test_a_retry_returns_the_first_batch_even_once_its_traces_are_gone(api_client, sync_tasks):
    trace = agent_trace()
    body = {"scorerId": "completeness", "traceIds": [trace.trace_id]}
    first = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="gone")
    trace.delete()

    again = api_client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="gone")

    assert again.status_code == 202
    assert again.json()["batchId"] == first.json()["batchId"]
