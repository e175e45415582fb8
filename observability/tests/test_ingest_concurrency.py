"""Concurrent exports of one trace's spans, in any order, against a live server."""

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from observability.models import Trace
from observability.services import create_ingest_key

pytestmark = pytest.mark.django_db(transaction=True)

NS = 1_764_320_400_000_000_000
MS = 1_000_000


def export(*spans):
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()


def trace_spans(number):
    trace_id = number.to_bytes(16, "big")
    root_id = (number * 100).to_bytes(8, "big")
    root = Span(
        trace_id=trace_id,
        span_id=root_id,
        name=f"run {number}",
        start_time_unix_nano=NS,
        end_time_unix_nano=NS + 900 * MS,
        status=Status(code=Status.STATUS_CODE_OK),
    )
    children = [
        Span(
            trace_id=trace_id,
            span_id=(number * 100 + k).to_bytes(8, "big"),
            parent_span_id=root_id,
            name=f"step {k}",
            start_time_unix_nano=NS + k * MS,
            end_time_unix_nano=NS + (k + 100) * MS,
        )
        for k in range(1, 41)
    ]
    return root, children


def test_spans_of_one_trace_sent_concurrently_in_any_order_and_twice_give_right_traces(
    live_server,
):
    _, secret = create_ingest_key(name="concurrency")
    bodies = []
    for number in range(1, 21):
        root, children = trace_spans(number)
        # Each trace in five requests: four of ten children each, and the root.
        bodies += [export(*children[i : i + 10]) for i in range(0, 40, 10)] + [export(root)]
    bodies = bodies * 2
    random.Random(3).shuffle(bodies)

    def send(body):
        return requests.post(
            f"{live_server.url}/v1/traces",
            data=body,
            headers={
                "Content-Type": "application/x-protobuf",
                "Authorization": f"Bearer {secret}",
            },
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, bodies))

    assert set(statuses) == {200}
    traces = list(Trace.objects.order_by("name"))
    assert len(traces) == 20
    for trace in traces:
        assert trace.has_root and trace.status == "ok"
        assert trace.span_count == 41
        assert trace.name.startswith("run ")
        assert trace.duration_ms == 900
