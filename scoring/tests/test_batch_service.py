"""start_batch and the scoring tasks, run in django-q2 sync mode (no worker)."""

import pytest
from django.test import override_settings
from django_q.conf import Conf

from scoring import services
from scoring.choices import ScoreStatus
from scoring.models import Score
from tests.factories import agent_trace, new_trace_id

pytestmark = pytest.mark.django_db(transaction=True)

TEST_SCORERS = override_settings(
    TRACESCORE_SCORERS=["scoring.tests.worker_scorers"],
    TRACESCORE_SCORER_TIMEOUT=0.5,
)


@pytest.fixture(autouse=True)
def test_scorers(monkeypatch):
    """Test scorers only, and django-q2 in sync mode (tasks run inside async_task)."""
    monkeypatch.setattr(Conf, "SYNC", True)
    with TEST_SCORERS:
        yield


def test_a_batch_scores_every_known_trace_once_and_lists_the_unknown_ones():
    one, two = agent_trace(), agent_trace()
    missing = new_trace_id()
    batch = services.start_batch(
        scorer_id="test-answer-length",
        trace_ids=[one.trace_id, two.trace_id, one.trace_id.upper(), missing],
    )
    assert batch.trace_count == 2
    assert batch.unknown_trace_ids == [missing]
    scores = Score.objects.filter(batch=batch)
    assert sorted(s.trace_id for s in scores) == sorted([one.trace_id, two.trace_id])
    assert {s.status for s in scores} == {ScoreStatus.SUCCEEDED}
    for s in scores:
        assert s.span_id == s.trace.root_span_id
        assert s.score == 1.0 and s.reason == "Checked the answer."
        assert s.source == "batch" and s.scorer_name == "Test answer length"
        assert s.duration_ms is not None
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert batch.progress() == {
        "total": 2,
        "pending": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 2,
        "failed": 0,
        "skipped": 0,
        "done": 2,
    }


def test_a_large_batch_is_fanned_out_by_one_task_and_still_scores_each_trace():
    traces = [agent_trace() for _ in range(services.DIRECT_ENQUEUE_LIMIT + 2)]
    batch = services.start_batch(
        scorer_id="test-answer-length", trace_ids=[t.trace_id for t in traces]
    )
    assert batch.progress()["succeeded"] == len(traces)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scorer_id": "nope"}, services.UnknownScorerError, "No scorer with id 'nope'"),
        ({"trace_ids": []}, services.InvalidBatchError, "non-empty list"),
        ({"trace_ids": ["xyz"]}, services.InvalidBatchError, "not 32 hexadecimal"),
        ({"trace_ids": ["a" * 32] * 10_001}, services.InvalidBatchError, "at most 10,000"),
        ({"scope_type": "every"}, services.InvalidBatchError, "scopeType must be 'trace'"),
        ({"scope_type": "span"}, services.InvalidBatchError, "needs targets"),
        ({"scorer_id": "test-offline"}, services.InvalidBatchError, "No judge endpoint"),
        ({"trace_ids": ["f" * 32]}, services.NoKnownTracesError, "None of the 1 trace ids"),
    ],
)
def test_a_batch_that_cannot_start_says_why(kwargs, error, message):
    args = {"scorer_id": "test-answer-length", "trace_ids": ["f" * 32], **kwargs}
    with pytest.raises(error, match=message) as caught:
        services.start_batch(**args)
    assert caught.value.status_code == (404 if error is not services.InvalidBatchError else 400)
    assert not Score.objects.exists()


def test_a_scorer_error_a_crash_and_a_hang_fail_their_trace_and_the_others_are_scored():
    ok = agent_trace(answer="All good.")
    refused = agent_trace(answer="You get a refund.")
    crashed = agent_trace(answer="This will crash.")
    hung = agent_trace(answer="This will hang.")
    batch = services.start_batch(
        scorer_id="test-picky",
        trace_ids=[t.trace_id for t in (ok, refused, crashed, hung)],
    )
    by_trace = {s.trace_id: s for s in Score.objects.filter(batch=batch)}
    assert by_trace[ok.trace_id].status == ScoreStatus.SUCCEEDED
    assert by_trace[refused.trace_id].error == "Refund answers cannot be scored."
    assert by_trace[crashed.trace_id].error == "The scorer crashed: RuntimeError: boom"
    assert by_trace[hung.trace_id].error == "The scorer did not finish within 0.5 s."
    assert batch.progress() == {
        "total": 4,
        "pending": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 3,
        "skipped": 0,
        "done": 4,
    }
