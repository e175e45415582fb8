"""Demo traces: ``observability.demo.generate`` and ``manage.py seed_demo``."""

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from observability.demo import generate, generate_traces
from observability.models import Span, Trace

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo() -> list[list]:
    return list(generate_traces(600, seed=11, now=NOW))


def roots(demo):
    return [next(s for s in spans if s.parent_span_id is None) for spans in demo]


def test_the_same_seed_gives_the_same_traces_and_another_seed_others():
    first = list(generate(25, seed=3, now=NOW))
    assert first == list(generate(25, seed=3, now=NOW))
    other = list(generate(25, seed=4, now=NOW))
    assert {s.trace_id for s in first}.isdisjoint({s.trace_id for s in other})


def test_now_only_moves_the_traces_in_time():
    here = list(generate(10, seed=3, now=NOW))
    later = list(generate(10, seed=3, now=NOW + timedelta(days=1)))
    assert [(s.trace_id, s.span_id, s.name, s.status) for s in here] == [
        (s.trace_id, s.span_id, s.name, s.status) for s in later
    ]
    # Dates written in the content move too, so only the runs' start times are compared.
    starts = [s.started_at for s in here if s.parent_span_id is None]
    assert [t + timedelta(days=1) for t in starts] == [
        s.started_at for s in later if s.parent_span_id is None
    ]


def test_every_trace_has_one_root_and_parents_inside_the_trace(demo):
    for spans in demo:
        assert len({s.trace_id for s in spans}) == 1
        ids = {s.span_id for s in spans}
        assert len(ids) == len(spans)
        assert [s.parent_span_id for s in spans].count(None) == 1
        assert all(s.parent_span_id in ids for s in spans if s.parent_span_id)


def test_traces_are_agent_runs_and_workflow_runs_spread_over_the_last_week(demo):
    kinds = {root.span_type for root in roots(demo)}
    assert kinds == {"agent_run", "workflow_run"}
    starts = [root.started_at for root in roots(demo)]
    assert min(starts) >= NOW - timedelta(days=7)
    assert max(s.ended_at for spans in demo for s in spans) <= NOW
    assert max(starts) - min(starts) > timedelta(days=6)
    names = {root.name for root in roots(demo)}
    assert {"support-agent", "research-agent", "ticket-triage", "invoice-processing"} <= names


def test_agent_runs_follow_the_native_conventions(demo):
    agents = [spans for spans in demo if spans[0].span_type == "agent_run"]
    assert len(agents) > 200
    for spans in agents:
        root, children = spans[0], spans[1:]
        assert isinstance(root.input, str) and root.input.strip()
        assert {c.span_type for c in children} <= {"llm_generation", "tool_call"}
        for llm in (c for c in children if c.span_type == "llm_generation"):
            assert llm.input[0]["role"] == "system" and llm.input[0]["content"]
            assert {"role", "content"} <= set(llm.input[1])
            assert [m["role"] for m in llm.output] == ["assistant"]
            assert llm.model and llm.input_tokens > 0 and llm.output_tokens > 0
        for tool in (c for c in children if c.span_type == "tool_call"):
            assert isinstance(tool.input, dict)
            assert tool.output is not None or tool.status == "error"
        if root.status == "ok":
            assert isinstance(root.output, str)
            assert root.output == children[-1].output[0]["content"]


def test_workflow_runs_have_steps_some_with_a_model_call_inside(demo):
    workflows = [spans for spans in demo if spans[0].span_type == "workflow_run"]
    assert len(workflows) > 100
    nested = 0
    for spans in workflows:
        root = spans[0]
        steps = [s for s in spans if s.parent_span_id == root.span_id]
        assert steps and {s.span_type for s in steps} == {"workflow_step"}
        inner = [s for s in spans if s not in steps and s is not root]
        nested += bool(inner)
        assert {s.span_type for s in inner} <= {"llm_generation", "embedding"}
    assert nested > len(workflows) / 2


def test_some_roots_carry_expectations_for_scorers(demo):
    metadata = [r.attributes["metadata"] for r in roots(demo) if "metadata" in r.attributes]
    assert 0.15 * len(demo) < len(metadata) < 0.5 * len(demo)
    assert any("lookup_order" in m.get("expected_tools", []) for m in metadata)
    assert all(isinstance(m.get("expected_output", ""), str) for m in metadata)


def test_some_runs_fail_with_a_message_on_a_tool_or_step_and_some_are_slow(demo):
    failing = [spans for spans in demo if any(s.status == "error" for s in spans)]
    assert 0.03 * len(demo) < len(failing) < 0.15 * len(demo)
    for spans in failing:
        culprits = [s for s in spans if s.status == "error" and s.parent_span_id]
        assert culprits and culprits[0].span_type in ("tool_call", "workflow_step")
        assert culprits[0].error_message
        assert culprits[0].events[0]["name"] == "exception"
    durations = [root.duration_ms for root in roots(demo)]
    assert sum(d > 15_000 for d in durations) > 0.02 * len(demo)
    assert sorted(durations)[len(durations) // 2] < 8_000


def test_a_rare_long_run_has_up_to_about_two_hundred_spans():
    sizes = [len(spans) for spans in generate_traces(3000, seed=2, now=NOW)]
    assert 50 <= max(sizes) <= 200
    assert 5 <= sum(sizes) / len(sizes) <= 8


@pytest.mark.django_db
def test_seed_demo_stores_the_traces_and_a_second_run_changes_nothing(capsys):
    call_command("seed_demo", traces=40, seed=5, batch_spans=50)
    assert "Loaded 40 demo traces" in capsys.readouterr().out
    spans = Span.objects.count()
    assert Trace.objects.count() == 40
    assert spans == sum(len(t) for t in generate_traces(40, seed=5))
    assert Trace.objects.filter(has_root=True, span_count__gt=1).count() == 40

    call_command("seed_demo", traces=40, seed=5)

    assert (Trace.objects.count(), Span.objects.count()) == (40, spans)


@pytest.mark.django_db
def test_seeded_traces_match_their_spans():
    call_command("seed_demo", traces=60, seed=8)
    by_trace = defaultdict(list)
    for s in Span.objects.all():
        by_trace[s.trace_id].append(s)
    for trace in Trace.objects.all():
        spans = by_trace[trace.trace_id]
        assert trace.span_count == len(spans)
        assert trace.has_error == any(s.status == "error" for s in spans)
        assert trace.input_tokens == sum(s.input_tokens or 0 for s in spans)


@pytest.mark.django_db
def test_seed_demo_loads_two_hundred_traces_in_a_couple_of_seconds():
    started = time.perf_counter()
    call_command("seed_demo", traces=200, verbosity=0)
    assert time.perf_counter() - started < 3
    assert Trace.objects.count() == 200


@pytest.mark.django_db
def test_seed_demo_refuses_a_negative_count():
    with pytest.raises(CommandError, match="--traces must be 0 or more"):
        call_command("seed_demo", traces=-1)
