"""A backfill of 20,000 traces: the request answers at once, the fan-out adds the Scores
and outcomes chunk by chunk (run here in-process), and queues every Score."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.brokers import get_broker

from observability.services import ingest_spans
from scoring import rules
from scoring.models import RuleOutcome, Score, ScoringBatch
from tests.factories import new_span_id, new_trace_id, span
from tests.worker import queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def broker(settings):
    settings.TRACESCORE_SCORERS = [*settings.TRACESCORE_SCORERS, "scoring.tests.worker_scorers"]
    get_broker().purge_queue()
    rules.forget_live_rules()
    yield get_broker()
    get_broker().purge_queue()


def stored_traces(count: int, *, span_type: str, start) -> None:
    records = [
        span(
            new_trace_id(),
            span_id=new_span_id(),
            name="support-agent",
            span_type=span_type,
            status="ok",
            started_at=start + timedelta(milliseconds=i),
            ended_at=start + timedelta(milliseconds=i + 900),
            input="Where is my order?",
            output="It shipped.",
        )
        for i in range(count)
    ]
    for offset in range(0, count, 5000):
        ingest_spans(records[offset : offset + 5000])


def test_a_backfill_of_20000_traces_fans_out_in_chunks_and_queues_every_score(broker, settings):
    start = timezone.now() - timedelta(days=1)
    stored_traces(20_000, span_type="agent_run", start=start)
    stored_traces(500, span_type="workflow_run", start=start)
    rule = rules.create_rule(
        name="Backfilled",
        scorer_ids=["test-answer-length"],
        filter={"type": "agent_run"},
        live=False,
    )
    began = time.monotonic()
    batch = rules.start_backfill(rule=rule, started_after=start - timedelta(minutes=1))
    answered = time.monotonic() - began
    assert answered < 1  # the request does not wait for the fan-out
    assert broker.queue_size() == 1  # one fan-out task, nothing else yet
    batch.refresh_from_db()
    assert (batch.fanning_out, batch.score_count) == (True, 0)

    while rules.fan_out_chunk(batch.pk):  # the task's chunks, run here
        pass

    batch = ScoringBatch.objects.get(pk=batch.pk)
    assert (batch.fanning_out, batch.trace_count, batch.score_count) == (False, 20_000, 20_000)
    assert batch.finished_at is None  # its Scores wait for workers
    assert Score.objects.filter(batch=batch, status="pending", rule=rule).count() == 20_000
    assert RuleOutcome.objects.filter(rule=rule, outcome="pending").count() == 20_000
    tasks = queued_tasks(broker)
    assert tasks[0]["func"] == "scoring.tasks.fan_out_batch"
    chunks = [task["args"][0] for task in tasks[1:]]
    assert {task["func"] for task in tasks[1:]} == {"scoring.tasks.score_chunk"}
    queued = [score_id for chunk in chunks for score_id in chunk]
    assert sorted(queued) == sorted(Score.objects.filter(batch=batch).values_list("pk", flat=True))
    assert max(len(chunk) for chunk in chunks) <= settings.TRACESCORE_SCORE_CHUNK
    assert rules.rule_stats(rule)["considered"] == 20_000
