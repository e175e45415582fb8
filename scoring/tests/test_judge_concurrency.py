"""Judges at scale: many calls in flight per worker, shared rate limits, 429 storms.

The judge is the loopback OpenAI-compatible server (tests/fake_openai.py), which
counts the calls in flight. Chunks are run as a worker runs them
(``tasks.score_chunk``) in this process.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django_q.brokers import get_broker
from django_q.conf import Conf

from scoring import services, tasks
from scoring.choices import ScoreStatus
from scoring.models import Score
from scoring.scorers.judging import NO_STRUCTURED_OUTPUT
from scoring.scorers.limits import LocalBucket, RedisBucket
from tests.factories import agent_trace
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.django_db(transaction=True)

# One answer that serves both toxicity steps: the statements, then their verdicts.
TOXICITY = json.dumps(
    {
        "statements": ["Your order shipped."],
        "verdicts": [{"item": "Your order shipped.", "verdict": "no", "reason": "Neutral."}],
    }
)


@pytest.fixture
def judge(settings, monkeypatch):
    NO_STRUCTURED_OUTPUT.clear()
    get_broker().purge_queue()
    monkeypatch.setattr(Conf, "SYNC", False)  # tasks wait in the broker; tests run them
    with FakeOpenAI(default=Reply(TOXICITY), latency=0.2) as server:
        settings.TRACESCORE_JUDGE_BASE_URL = server.base_url
        settings.TRACESCORE_JUDGE_MODEL = "judge-test-model"
        settings.TRACESCORE_JUDGE_API_KEY = "sk-test"
        settings.TRACESCORE_JUDGE_TIMEOUT = 5
        settings.TRACESCORE_JUDGE_MAX_RETRIES = 2
        settings.TRACESCORE_JUDGE_CONCURRENCY = 4
        settings.TRACESCORE_JUDGE_RPM = 0
        settings.TRACESCORE_JUDGE_TPM = 0
        settings.TRACESCORE_SCORER_TIMEOUT = 10
        settings.TRACESCORE_SCORE_CHUNK = 50
        yield server
    get_broker().purge_queue()
    NO_STRUCTURED_OUTPUT.clear()


def start(count: int, scorer_id: str = "toxicity") -> list[int]:
    traces = [agent_trace() for _ in range(count)]
    batch = services.start_batch(scorer_id=scorer_id, trace_ids=[t.trace_id for t in traces])
    get_broker().purge_queue()
    return list(Score.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True))


def statuses(ids: list[int]) -> list[str]:
    return list(Score.objects.filter(pk__in=ids).order_by("pk").values_list("status", flat=True))


def test_a_chunks_judges_run_side_by_side_and_never_above_the_limit(judge):
    ids = start(12)  # 2 calls each: 24 calls of 0.2 s, 4.8 s one at a time
    started = time.monotonic()
    assert tasks.score_chunk(ids) == "12 succeeded"
    elapsed = time.monotonic() - started
    assert judge.stats()["requests"] == 24
    assert judge.stats()["peak_in_flight"] == 4  # the limit, reached and never passed
    assert elapsed < 3.0
    assert statuses(ids) == [ScoreStatus.SUCCEEDED] * 12
    score = Score.objects.get(pk=ids[0])
    assert score.score == 0.0 and [s["name"] for s in score.details["steps"]] == [
        "extract",
        "verdicts",
    ]


def test_a_429_storm_slows_scoring_down_but_every_score_succeeds(judge, settings):
    settings.TRACESCORE_JUDGE_MAX_RETRIES = 0  # 429s are not counted against it
    judge.latency = 0.05
    judge.storm(0.3, seconds=30, retry_after_ms=100, seed=3)
    ids = start(20)
    assert tasks.score_chunk(ids) == "20 succeeded"
    assert statuses(ids) == [ScoreStatus.SUCCEEDED] * 20
    assert judge.stats()["throttled"] >= 5
    throttled = Score.objects.filter(pk__in=ids, details__throttled__gte=1).count()
    assert throttled >= 1
    assert judge.stats()["peak_in_flight"] <= 4


def test_a_judge_throttled_past_its_time_limit_is_queued_again_then_fails_when_attempts_run_out(
    judge, settings
):
    settings.TRACESCORE_SCORER_TIMEOUT = 1
    judge.storm(1.0, seconds=60, retry_after_ms=400)
    [score_id] = start(1)
    assert tasks.score_chunk([score_id]) == "1 requeued"
    score = Score.objects.get(pk=score_id)
    assert (score.status, score.claimed_by, score.lease_expires_at, score.attempts) == (
        ScoreStatus.PENDING,
        "",
        None,
        1,
    )
    assert get_broker().queue_size() == 1  # its chunk, queued again

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "max_attempts": 2}
    assert tasks.score_chunk([score_id]) == "1 failed"
    score.refresh_from_db()
    assert score.status == ScoreStatus.FAILED
    assert "answered HTTP 429" in score.error
    assert "still rate limiting when the scorer's time limit ran out" in score.error


def test_a_judge_slower_than_the_time_limit_fails_without_holding_the_chunk(judge, settings):
    settings.TRACESCORE_SCORER_TIMEOUT = 0.5
    judge.latency = 3
    ids = start(3)
    started = time.monotonic()
    assert tasks.score_chunk(ids) == "3 failed"
    assert time.monotonic() - started < 1.5
    for score in Score.objects.filter(pk__in=ids):
        assert score.status == ScoreStatus.FAILED
        assert re.search(
            r"did not answer within 0\.[0-5]\d* s|did not finish within 0\.5 s", score.error
        )


def test_judge_calls_wait_for_the_shared_requests_per_minute(judge, settings):
    settings.TRACESCORE_JUDGE_RPM = 2  # a burst of 2, then one every 30 s
    settings.TRACESCORE_SCORER_TIMEOUT = 1
    judge.default = Reply(json.dumps({"opinions": []}))  # bias: one call when no opinions
    ids = start(3, scorer_id="bias")
    assert tasks.score_chunk(ids) == "1 requeued, 2 succeeded"
    assert judge.stats()["requests"] == 2
    [waiting] = Score.objects.filter(pk__in=ids, status=ScoreStatus.PENDING)
    assert waiting.claimed_by == ""


def test_the_bucket_refuses_requests_beyond_the_rpm_until_time_refills_it():
    now = [1000.0]
    bucket = LocalBucket(rpm=3, tpm=0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(20.0)  # 1 request per 20 s
    now[0] += 10
    assert bucket.take() == pytest.approx(10.0)
    now[0] += 10
    assert bucket.take() == 0.0
    assert bucket.take() > 0


def test_the_bucket_counts_tokens_per_minute_and_charges_what_was_used_beyond_the_estimate():
    now = [0.0]
    bucket = LocalBucket(rpm=0, tpm=600, clock=lambda: now[0])
    assert bucket.take(1, 400) == 0.0
    assert bucket.take(1, 400) == pytest.approx(20.0)  # 200 short, 10 tokens a second
    bucket.take(0, 300, force=True)  # the first call used 300 more than estimated
    now[0] += 20
    assert bucket.take(1, 400) == pytest.approx(30.0)


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")
def test_the_redis_bucket_is_shared_by_every_process():
    key = f"tracescore:test:judge-limit:{uuid.uuid4().hex}"
    one = RedisBucket(redis.Redis.from_url(django_settings.REDIS_URL), key, rpm=2, tpm=0)
    other = RedisBucket(redis.Redis.from_url(django_settings.REDIS_URL), key, rpm=2, tpm=0)
    try:
        assert one.take() == 0.0
        assert other.take() == 0.0
        assert 29 < one.take() <= 30  # the two took the minute's burst between them
        assert 29 < other.take() <= 30
    finally:
        one.client.delete(key)


def test_a_real_worker_keeps_its_judge_calls_in_flight_at_the_limit(judge, settings, tmp_path):
    from tests.worker import run_worker, wait_for

    judge.latency = 0.3
    traces = [agent_trace() for _ in range(15)]
    env = {
        "TRACESCORE_WORKERS": "1",
        "TRACESCORE_JUDGE_BASE_URL": judge.base_url,
        "TRACESCORE_JUDGE_MODEL": "judge-test-model",
        "TRACESCORE_JUDGE_CONCURRENCY": "5",
        "TRACESCORE_SCORE_CHUNK": "50",
    }
    with run_worker(tmp_path / "worker.log", **env) as worker:
        batch = services.start_batch(scorer_id="toxicity", trace_ids=[t.trace_id for t in traces])
        scores = Score.objects.filter(batch=batch)
        wait_for(
            lambda: not scores.filter(status=ScoreStatus.PENDING).exists(),
            timeout=60,
            message=worker.log(),
        )
    assert set(scores.values_list("status", flat=True)) == {ScoreStatus.SUCCEEDED}
    assert judge.stats()["requests"] == 30
    assert judge.stats()["peak_in_flight"] == 5  # one worker process, 5 slots, all used


def test_judges_that_could_not_finish_before_the_task_timeout_are_handed_back(judge, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 2}
    settings.TRACESCORE_SCORER_TIMEOUT = 1
    judge.latency = 0.05
    ids = start(4)
    assert tasks.score_chunk(ids) == "3 handed back, 1 succeeded"
    assert judge.stats()["requests"] == 2  # one Score's two calls
    assert statuses(ids).count(ScoreStatus.PENDING) == 3
    assert get_broker().queue_size() == 1
