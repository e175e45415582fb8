"""Scoring rules: filters, versions, live scoring of finished traces, the audit, backfills,
retries. Tasks run in-process (django-q2 sync mode); tests/test_rules_e2e.py runs them
through a real worker.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf

from observability.services import ingest_spans
from scoring import rules, services, tasks
from scoring.choices import RuleOutcomeKind, ScoreSource, ScoreStatus
from scoring.models import LiveCandidate, RuleOutcome, Score, ScoringBatch, ScoringRule
from scoring.tests import worker_scorers
from tests.factories import agent_trace, new_trace_id, span
from tests.worker import queued_score_ids

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process(monkeypatch, settings, tmp_path):
    get_broker().purge_queue()
    monkeypatch.setattr(Conf, "SYNC", True)
    monkeypatch.setenv("TEST_SCORER_SLEEP", "0")
    monkeypatch.setenv("TEST_SCORER_BROKEN_FLAG", str(tmp_path / "broken"))
    settings.TRACESCORE_SCORERS = [*settings.TRACESCORE_SCORERS, "scoring.tests.worker_scorers"]
    settings.TRACESCORE_LIVE_SETTLE_SECONDS = 0
    settings.TRACESCORE_LIVE_SWEEPER_SECONDS = 0
    worker_scorers.slow_calls.clear()
    rules.forget_live_rules()
    yield
    rules.forget_live_rules()
    get_broker().purge_queue()


def a_rule(**kwargs):
    kwargs.setdefault("name", "Answer quality")
    kwargs.setdefault("scorer_ids", ["test-answer-length"])
    kwargs.setdefault("filter", {"type": "agent_run"})
    return rules.create_rule(**kwargs)


def root_only(trace_id=None, *, output="Your order shipped.", span_type="agent_run", **fields):
    trace_id = trace_id or new_trace_id()
    start = timezone.now() - timedelta(seconds=3)
    return span(
        trace_id,
        name=fields.pop("name", "support-agent"),
        span_type=span_type,
        status="ok",
        started_at=start,
        ended_at=start + timedelta(milliseconds=fields.pop("duration_ms", 1200)),
        input=fields.pop("input", "Where is my order?"),
        output=output,
        **fields,
    )


# --- filters -----------------------------------------------------------------


def test_a_filter_is_checked_and_normalised():
    assert rules.clean_filter(
        {"name": " support ", "type": "agent_run", "metadata": {"tier": 2}, "minDurationMs": "5"}
    ) == {"name": "support", "type": "agent_run", "metadata": {"tier": "2"}, "minDurationMs": 5}
    assert rules.clean_filter({"name": "", "metadata": {}}) == {}


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "filter must be an object"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"type": "robot"}, "filter.type must be one of"),
        ({"minDurationMs": 9, "maxDurationMs": 3}, "must not exceed"),
        ({"metadata": {"a=b": "c"}}, "without '='"),
        ({"maxDurationMs": "soon"}, "number of milliseconds"),
    ],
)
def test_a_bad_filter_says_what_is_wrong(data, message):
    with pytest.raises(rules.RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rules.clean_filter(data)


def test_trace_list_parameters_and_rule_filters_convert_both_ways():
    params = QueryDict(
        "name=support&type=agent_run&metadata=tier%3Dgold&metadata=region%3Deu"
        "&min_duration_ms=100&started_after=2026-11-01&page=3"
    )
    rule_filter = rules.filter_from_params(params)
    assert rule_filter == {
        "name": "support",
        "type": "agent_run",
        "metadata": {"tier": "gold", "region": "eu"},
        "minDurationMs": 100,
    }
    assert rules.params_from_filter(rule_filter) == {
        "name": "support",
        "type": "agent_run",
        "metadata": ["tier=gold", "region=eu"],
        "min_duration_ms": "100",
    }


def test_matching_traces_applies_every_field_of_the_filter():
    gold = agent_trace(name="support-agent", metadata={"tier": "gold"})
    agent_trace(name="support-agent", metadata={"tier": "free"})
    agent_trace(name="billing-agent", metadata={"tier": "gold"})
    found = rules.matching_traces({"name": "SUPPORT", "metadata": {"tier": "gold"}})
    assert list(found.values_list("trace_id", flat=True)) == [gold.trace_id]
    assert rules.matching_traces({"minDurationMs": 5000}).count() == 0
    assert rules.matching_traces({"maxDurationMs": 5000, "service": "shop-support"}).count() == 3


# --- rules and versions ----------------------------------------------------------


def test_editing_scorers_or_filter_makes_a_new_version_and_scores_keep_theirs():
    rule = a_rule()
    trace = agent_trace()
    first = Score.objects.get(trace=trace)
    assert (first.source, first.rule_id, first.rule_version) == (ScoreSource.RULE, rule.pk, 1)

    rule = rules.update_rule(rule, name="Renamed")
    assert rule.version == 1  # a new name is not a new version
    rule = rules.update_rule(rule, scorer_ids=["test-answer-length", "test-slow"])
    assert rule.version == 2
    assert list(rule.versions.values_list("version", "scorer_ids")) == [
        (2, ["test-answer-length", "test-slow"]),
        (1, ["test-answer-length"]),
    ]
    agent_trace()
    assert sorted(Score.objects.values_list("rule_version", flat=True)) == [1, 2, 2]
    first.refresh_from_db()
    assert first.rule_version == 1


@pytest.mark.parametrize(
    "kwargs, message, status",
    [
        ({"scorer_ids": ["no-such-scorer"]}, "No scorer with id 'no-such-scorer'", 404),
        ({"scorer_ids": []}, "non-empty list", 400),
        ({"sample_rate": 1.5}, "from 0 to 1", 400),
        ({"target": "robot"}, "target must be 'trace' or a span type", 400),
        ({"name": "  "}, "name must be non-empty", 400),
        ({"max_cost_usd": -1}, "maxCostUsd", 400),
    ],
)
def test_a_rule_that_cannot_be_made_says_why(kwargs, message, status):
    with pytest.raises(rules.RuleError, match=message) as error:
        a_rule(**kwargs)
    assert error.value.status_code == status
    assert not ScoringRule.objects.exists()


# --- live scoring ------------------------------------------------------------------


def test_a_finished_trace_is_scored_once_by_a_live_rule_and_the_audit_says_so():
    rule = a_rule()
    trace = agent_trace(answer="Your order shipped.")
    score = Score.objects.get(trace=trace)
    assert score.status == ScoreStatus.SUCCEEDED
    assert score.batch.rule_id == rule.pk
    outcome = RuleOutcome.objects.get(rule=rule, trace=trace)
    assert (outcome.outcome, outcome.score_id) == (RuleOutcomeKind.SCORED, score.pk)
    assert rules.rule_stats(rule) == {
        "considered": 1,
        "scored": 1,
        "sampled_out": 0,
        "skipped": 0,
        "failed": 0,
        "pending": 0,
    }
    # Spans arriving later are counted on the score, never scored twice.
    ingest_spans([span(trace.trace_id, parent_span_id=trace.root_span_id, name="late")])
    assert Score.objects.filter(trace=trace).count() == 1
    assert rules.late_spans(score) == 1
    [row] = rules.rule_outcomes_for_trace(trace.trace_id)
    assert (row["rule"], row["text"]) == (rule, "scored 1.00")


def test_a_trace_is_finished_only_after_its_root_and_a_quiet_settle_window(settings):
    settings.TRACESCORE_LIVE_SETTLE_SECONDS = 2
    rule = a_rule()
    trace_id = new_trace_id()
    root = root_only(trace_id)
    child = span(trace_id, parent_span_id=root.span_id, name="step", span_type="llm_generation")
    ingest_spans([child])  # no root yet: not a candidate
    assert not LiveCandidate.objects.exists()
    ingest_spans([root])  # the root, last
    due = LiveCandidate.objects.get().due_at
    assert rules.sweep_live_candidates(now=due - timedelta(seconds=0.5)) == 0

    late = span(trace_id, parent_span_id=root.span_id, name="late child")
    ingest_spans([late])  # inside the window: the window starts again
    pushed = LiveCandidate.objects.get().due_at
    assert pushed > due
    assert rules.sweep_live_candidates(now=pushed - timedelta(seconds=0.01)) == 0
    assert not Score.objects.exists()

    assert rules.sweep_live_candidates(now=timezone.now() + timedelta(seconds=3)) == 1
    score = Score.objects.get()
    assert (score.rule_id, score.status, score.span_id) == (rule.pk, "succeeded", root.span_id)
    assert rules.late_spans(score) == 0


def test_a_half_sampled_rule_scores_about_half_and_the_audit_lists_the_rest(monkeypatch):
    rule = a_rule(sample_rate=0.5)
    monkeypatch.setattr(Conf, "SYNC", False)  # Scores wait in the broker (the e2e runs them)
    ingest_spans([root_only() for _ in range(1000)])
    assert rules.sweep_live_candidates() == 1000
    scored = Score.objects.filter(rule=rule, status=ScoreStatus.PENDING).count()
    assert 450 <= scored <= 550
    pending = Score.objects.filter(rule=rule, status=ScoreStatus.PENDING)
    assert sorted(queued_score_ids(get_broker())) == sorted(pending.values_list("pk", flat=True))
    stats = rules.rule_stats(rule)
    assert stats["considered"] == 1000
    assert stats["pending"] == scored
    assert stats["sampled_out"] == 1000 - scored
    reasons = set(
        RuleOutcome.objects.filter(outcome=RuleOutcomeKind.SAMPLED_OUT).values_list(
            "reason", flat=True
        )
    )
    assert reasons == {"sampled out at 50 %"}
    # The same trace always gets the same decision.
    some = RuleOutcome.objects.filter(outcome=RuleOutcomeKind.SAMPLED_OUT).first().trace_id
    assert not rules.is_sampled(some, 0.5, rules.rule_salt(rule.pk))
    assert rules.is_sampled(some, 1.0, rules.rule_salt(rule.pk))


def test_a_paused_rule_does_nothing_and_resumes_on_new_traces():
    rule = a_rule()
    rules.update_rule(rule, active=False)
    paused = agent_trace()
    assert not Score.objects.exists()
    assert not RuleOutcome.objects.exists()
    assert rules.rule_outcomes_for_trace(paused.trace_id) == []
    rules.update_rule(rule, active=True)
    resumed = agent_trace()
    assert list(Score.objects.values_list("trace_id", flat=True)) == [resumed.trace_id]


def test_a_trace_a_rule_cannot_score_is_skipped_with_the_reason():
    rule = a_rule(filter={}, target="tool_call")
    no_tool = new_trace_id()
    ingest_spans([root_only(no_tool)])
    no_output = new_trace_id()
    ingest_spans([root_only(no_output, output=None)])
    outcome = RuleOutcome.objects.get(rule=rule, trace_id=no_tool)
    assert (outcome.outcome, outcome.reason) == ("skipped", "The trace has no tool call span.")
    whole = a_rule(name="Whole", filter={"name": "bare"})
    bare = new_trace_id()
    ingest_spans([root_only(bare, name="bare", input=None, output=None)])
    skipped = RuleOutcome.objects.get(rule=whole, trace_id=bare)
    assert skipped.reason == "The root span has no input or output."
    assert not Score.objects.filter(rule=whole).exists()


def test_a_span_type_rule_scores_every_span_of_that_type():
    rule = a_rule(target="llm_generation")
    trace = agent_trace()
    scores = Score.objects.filter(rule=rule, trace=trace)
    assert scores.count() == 2
    assert set(scores.values_list("span_type", flat=True)) == {"llm_generation"}
    assert RuleOutcome.objects.get(rule=rule).outcome == "scored"


def test_what_each_rule_did_with_a_trace_reads_for_a_person():
    picky = a_rule(name="Tone", sample_rate=0.0)
    other = a_rule(name="Errors only", filter={"status": "error"})
    trace = agent_trace()
    rows = {row["rule"].name: row for row in rules.rule_outcomes_for_trace(trace.trace_id)}
    assert rows["Tone"]["text"] == "sampled out at 0 %"
    assert rows["Errors only"]["text"] == "not matched: the status is ok, not error"
    assert rules.matched_no_live_rule(rows.values()) is False
    rules.delete_rule(picky)
    rows = rules.rule_outcomes_for_trace(trace.trace_id)
    assert [row["rule"] for row in rows] == [other]
    assert rules.matched_no_live_rule(rows) is True


def test_ingest_costs_the_same_few_queries_however_many_traces_an_export_carries():
    a_rule(filter={"name": "nothing matches this"})
    counts = []
    for size in (1, 50):
        records = [root_only() for _ in range(size)]
        rules.forget_live_rules()
        with CaptureQueriesContext(connection) as queries:
            ingest_spans(records)
        counts.append(len([q for q in queries.captured_queries if "scoring_" in q["sql"]]))
    assert counts[0] == counts[1]


# --- backfill, filter-wide batches, retry ---------------------------------------


def test_a_backfill_scores_existing_matching_traces_in_chunks_and_finishes_after_the_last(
    monkeypatch,
):
    monkeypatch.setattr(rules, "FANOUT_CHUNK", 3)
    old = [agent_trace() for _ in range(7)]
    agent_trace(name="billing-agent")
    rule = a_rule(filter={"name": "support"}, live=False)
    assert not Score.objects.exists()
    batch = rules.start_backfill(rule=rule)
    batch.refresh_from_db()
    assert (batch.fanning_out, batch.finished_at is not None) == (False, True)
    assert (batch.trace_count, batch.score_count) == (7, 7)
    assert set(Score.objects.values_list("trace_id", flat=True)) == {t.trace_id for t in old}
    assert rules.rule_stats(rule)["scored"] == 7
    # Run again: traces the rule considered are not considered twice.
    again = rules.start_backfill(rule=rule)
    again.refresh_from_db()
    assert again.score_count == 0


def test_a_half_built_batch_is_never_finished(monkeypatch):
    monkeypatch.setattr(rules, "FANOUT_CHUNK", 2)
    for _ in range(5):
        agent_trace()
    monkeypatch.setattr(Conf, "SYNC", False)  # the fan-out task waits in the broker
    batch = rules.start_filtered_batch(filter={}, scorer_ids=["test-answer-length"])
    assert rules.fan_out_chunk(batch.pk) is True
    Score.objects.update(status=ScoreStatus.SUCCEEDED)  # the first chunk is scored
    services.finish_batch_if_done(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.fanning_out, batch.finished_at, batch.score_count) == (True, None, 2)
    while rules.fan_out_chunk(batch.pk):
        pass
    Score.objects.update(status=ScoreStatus.SUCCEEDED)
    services.finish_batch_if_done(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.fanning_out, batch.score_count, batch.finished_at is not None) == (
        False,
        5,
        True,
    )


def test_a_filter_wide_batch_honours_its_sample_rate_and_limit():
    for _ in range(40):
        agent_trace()
    batch = rules.start_filtered_batch(
        filter={"type": "agent_run"}, scorer_ids=["test-answer-length"], limit=30
    )
    batch.refresh_from_db()
    assert batch.score_count == 30
    half = rules.start_filtered_batch(filter={}, scorer_ids=["test-answer-length"], sample_rate=0.5)
    half.refresh_from_db()
    assert 10 <= half.score_count <= 30
    assert not RuleOutcome.objects.exists()


def test_retry_requeues_exactly_the_failed_scores_once_the_scorer_is_fixed(tmp_path, monkeypatch):
    flag = tmp_path / "broken"
    flag.write_text("broken")
    rule = a_rule(scorer_ids=["test-broken-until-fixed"])
    traces = [agent_trace() for _ in range(3)]
    failed = list(Score.objects.filter(status=ScoreStatus.FAILED).order_by("pk"))
    assert len(failed) == 3
    assert rules.rule_stats(rule)["failed"] == 3
    flag.unlink()  # the scorer is fixed
    monkeypatch.setattr(Conf, "SYNC", False)  # the retried tasks wait in the broker
    assert rules.retry_failed(rule=rule) == 3
    assert sorted(queued_score_ids(get_broker())) == [s.pk for s in failed]
    waiting = list(Score.objects.order_by("pk"))
    assert {(s.status, s.error, s.finished_at, s.attempts) for s in waiting} == {
        ("pending", "", None, 1)
    }
    assert rules.rule_stats(rule)["pending"] == 3
    assert not ScoringBatch.objects.filter(finished_at__isnull=False).exists()
    for score in waiting:  # what the worker runs
        tasks.score_trace(score.pk)
    retried = list(Score.objects.order_by("pk"))
    assert [s.pk for s in retried] == [s.pk for s in failed]  # the same rows
    assert {(s.status, s.score, s.error, s.attempts) for s in retried} == {
        ("succeeded", 0.75, "", 2)
    }
    assert rules.rule_stats(rule)["scored"] == len(traces)
    assert all(b.finished_at for b in ScoringBatch.objects.all())
    assert rules.retry_failed(rule=rule) == 0


def test_the_minute_sweep_resumes_a_stalled_fan_out_and_wakes_a_lost_sweeper(monkeypatch):
    for _ in range(3):
        agent_trace()
    monkeypatch.setattr(Conf, "SYNC", False)  # the fan-out task is lost: nobody runs it
    batch = rules.start_filtered_batch(filter={}, scorer_ids=["test-answer-length"])
    get_broker().purge_queue()
    assert tasks.requeue_stale_scores()["fanouts_resumed"] == 0  # not stalled yet
    ScoringBatch.objects.filter(pk=batch.pk).update(fanout={"limit": 10, "considered": 0})
    monkeypatch.setattr(Conf, "SYNC", True)
    assert tasks.requeue_stale_scores()["fanouts_resumed"] == 1
    batch.refresh_from_db()
    assert (batch.fanning_out, batch.score_count, batch.finished_at is not None) == (
        False,
        3,
        True,
    )

    a_rule()
    monkeypatch.setattr(Conf, "SYNC", False)  # the sweeper's wake-up is lost
    trace = agent_trace()
    get_broker().purge_queue()
    rules.LiveSweeper.objects.update(woken_at=timezone.now() - timedelta(minutes=1))
    monkeypatch.setattr(Conf, "SYNC", True)
    assert tasks.requeue_stale_scores()["sweeper_woken"] == 1
    assert Score.objects.get(trace=trace, rule__isnull=False).status == "succeeded"


def test_a_filter_wide_batch_takes_the_trace_lists_dates_as_whole_days():
    day = timezone.now().replace(hour=12) - timedelta(days=3)
    inside = [agent_trace(started_at=day), agent_trace(started_at=day + timedelta(hours=11))]
    agent_trace(started_at=day + timedelta(days=1, hours=1))
    agent_trace(started_at=day - timedelta(days=1))
    batch = rules.start_filtered_batch(
        filter={},
        scorer_ids=["test-answer-length"],
        started_after=day.date().isoformat(),
        started_before=day.date().isoformat(),
    )
    assert set(Score.objects.filter(batch=batch).values_list("trace_id", flat=True)) == {
        t.trace_id for t in inside
    }
    with pytest.raises(rules.RuleError, match="ISO 8601 date"):
        rules.start_filtered_batch(filter={}, scorer_ids=["latency"], started_after="soon")
