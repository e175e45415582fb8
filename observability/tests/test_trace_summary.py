"""The trace summary kept at ingest: token totals count each token once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from observability.models import Trace
from observability.services import ingest_spans
from tests.factories import new_span_id, new_trace_id, span

pytestmark = pytest.mark.django_db


def test_an_agent_span_repeating_its_generations_usage_is_not_counted_twice():
    trace_id, root = new_trace_id(), new_span_id()
    start = timezone.now()
    ingest_spans(
        [
            span(
                trace_id,
                span_id=root,
                span_type="agent_run",
                started_at=start,
                input_tokens=300,
                output_tokens=30,
            ),
            span(
                trace_id,
                parent_span_id=root,
                span_type="llm_generation",
                started_at=start,
                input_tokens=100,
                output_tokens=10,
            ),
            span(
                trace_id,
                parent_span_id=root,
                span_type="llm_generation",
                started_at=start + timedelta(seconds=1),
                input_tokens=200,
                output_tokens=20,
            ),
            span(trace_id, parent_span_id=root, span_type="tool_call", started_at=start),
        ]
    )
    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.input_tokens, trace.output_tokens) == (300, 30)


def test_a_trace_without_generations_counts_the_usage_its_spans_report():
    trace_id, root = new_trace_id(), new_span_id()
    ingest_spans(
        [
            span(trace_id, span_id=root, span_type="agent_run", input_tokens=120, output_tokens=12),
            span(trace_id, parent_span_id=root, span_type="generic", input_tokens=5),
        ]
    )
    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.input_tokens, trace.output_tokens) == (125, 12)
