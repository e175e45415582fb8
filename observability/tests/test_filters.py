"""TraceFilter as the HTML trace list uses it: bound to request.GET, valid or with messages."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from observability.filters import TraceFilter
from observability.models import Trace
from observability.services import ingest_spans
from scoring.models import Score
from tests.factories import agent_trace, new_trace_id, span

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def traces(**params) -> set[str]:
    filterset = TraceFilter(params, queryset=Trace.objects.all())
    assert filterset.is_valid(), filterset.errors
    return set(filterset.qs.values_list("trace_id", flat=True))


def at(started_at: datetime) -> str:
    trace_id = new_trace_id()
    ingest_spans([span(trace_id, name="run", started_at=started_at)])
    return trace_id


def test_no_parameters_keep_every_trace():
    ids = {agent_trace().trace_id, agent_trace(tool_error="boom").trace_id}
    assert traces() == ids


def test_blank_fields_of_a_submitted_form_are_ignored():
    ids = {agent_trace().trace_id, agent_trace(tool_error="boom").trace_id}
    blank = dict.fromkeys(
        ["name", "type", "status", "started_after", "started_before", "scored_by"], ""
    )
    assert traces(**blank) == ids


def test_invalid_values_make_the_filter_invalid_with_a_message_per_field():
    filterset = TraceFilter(
        {"status": "done", "type": "chain", "started_after": "last week", "scored_by": "a b"},
        queryset=Trace.objects.all(),
    )
    assert not filterset.is_valid()
    assert set(filterset.errors) == {"status", "type", "started_after", "scored_by"}
    assert filterset.errors["started_after"] == [
        "Enter an ISO 8601 date (2026-11-20) or date and time (2026-11-20T14:30:00Z)."
    ]


def test_the_form_offers_every_type_and_status_after_an_any_choice():
    form = TraceFilter(queryset=Trace.objects.all()).form
    types = list(form.fields["type"].choices)
    statuses = list(form.fields["status"].choices)
    assert types[0] == ("", "Any type")
    assert ("agent_run", "Agent run") in types and ("workflow_run", "Workflow run") in types
    assert statuses == [("", "Any status"), ("unset", "Unset"), ("ok", "OK"), ("error", "Error")]


def test_a_trace_scored_several_times_by_the_scorer_is_listed_once():
    trace = agent_trace()
    agent_trace()
    for value in (0.2, 0.4, 0.9):
        Score.objects.create(trace=trace, scorer_id="completeness", score=value)
    filterset = TraceFilter({"scored_by": "completeness"}, queryset=Trace.objects.all())
    assert filterset.is_valid()
    assert list(filterset.qs.values_list("trace_id", flat=True)) == [trace.trace_id]


def test_scored_by_an_unknown_scorer_finds_nothing():
    Score.objects.create(trace=agent_trace(), scorer_id="completeness", score=1)
    assert traces(scored_by="bias-check") == set()


def test_datetimes_with_an_offset_are_compared_in_absolute_time():
    early = at(T0)
    late = at(T0 + timedelta(hours=2))
    # 11:30 in Paris (+01:00) is 10:30 UTC.
    assert traces(started_after="2026-11-20T11:30:00+01:00") == {late}
    assert traces(started_before="2026-11-20T11:30:00+01:00") == {early}


def test_dates_and_naive_datetimes_are_read_in_the_current_time_zone():
    # 23:30 UTC on the 19th is already the 20th in Paris.
    late_evening = at(datetime(2026, 11, 19, 23, 30, tzinfo=UTC))
    with timezone.override("Europe/Paris"):
        assert traces(started_after="2026-11-20") == {late_evening}
        assert traces(started_before="2026-11-19") == set()
        assert traces(started_after="2026-11-20T00:31") == set()
        assert traces(started_after="2026-11-20T00:29") == {late_evening}
    assert traces(started_after="2026-11-20") == set()


def test_service_metadata_and_duration_filters():
    mastra_id = new_trace_id()
    ingest_spans(
        [
            span(
                mastra_id,
                name="agent run",
                span_type="agent_run",
                started_at=T0,
                ended_at=T0 + timedelta(seconds=5),
                attributes={"mastra.metadata.tier": "gold", "mastra.metadata.userId": 42},
                resource={"service.name": "billing"},
            )
        ]
    )
    nested = agent_trace(metadata={"tier": "silver", "lang": "fr"}, started_at=T0).trace_id
    dotted_id = new_trace_id()
    ingest_spans(
        [
            span(
                dotted_id,
                name="run",
                started_at=T0,
                ended_at=T0 + timedelta(milliseconds=300),
                attributes={"metadata.tier": "gold"},
            )
        ]
    )
    child_only = new_trace_id()
    root_id = "00000000000000aa"
    ingest_spans(
        [
            span(child_only, span_id=root_id, name="run", started_at=T0),
            span(
                child_only,
                parent_span_id=root_id,
                name="step",
                started_at=T0,
                attributes={"metadata.tier": "gold"},
            ),
        ]
    )

    assert traces(service="billing") == {mastra_id}
    assert traces(service="bill") == set()  # exact, not contains
    assert traces(metadata="tier=gold") == {mastra_id, dotted_id}  # the root's, not a child's
    assert traces(metadata="tier=silver") == {nested}
    assert traces(metadata="userId=42") == {mastra_id}  # numbers compare as text
    assert traces(metadata="tier=bronze") == set()
    assert traces(min_duration_ms="1000") == {mastra_id, nested}
    assert traces(max_duration_ms="300") == {dotted_id, child_only}
    assert traces(min_duration_ms="250", max_duration_ms="2500") == {dotted_id, nested}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metadata": "no-equals-sign"}, "metadata"),
        ({"metadata": "=value"}, "metadata"),
        ({"min_duration_ms": "-1"}, "min_duration_ms"),
        ({"max_duration_ms": "soon"}, "max_duration_ms"),
    ],
)
def test_bad_new_filter_values_are_explained(params, field):
    filterset = TraceFilter(params, queryset=Trace.objects.all())
    assert not filterset.is_valid()
    assert field in filterset.errors
