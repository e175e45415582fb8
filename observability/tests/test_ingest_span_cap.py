"""POST /v1/traces: an export with more spans than TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT."""

import gzip
import json

import pytest
from django.urls import reverse
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from observability.models import Span, Trace
from observability.services import create_ingest_key

pytestmark = pytest.mark.django_db

PROTOBUF = "application/x-protobuf"
NS = 1_764_320_400_000_000_000
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def post(client):
    _, secret = create_ingest_key(name="tests")

    def send(data, content_type=PROTOBUF, **headers):
        return client.generic(
            "POST",
            reverse("otlp-traces"),
            data,
            content_type=content_type,
            HTTP_AUTHORIZATION=f"Bearer {secret}",
            **headers,
        )

    return send


def protobuf_export(count: int) -> bytes:
    """``count`` bare spans (ids, a name and a start) of one trace, across two resources."""
    request = ExportTraceServiceRequest()
    halves = [request.resource_spans.add().scope_spans.add() for _ in range(2)]
    for n in range(count):
        span = halves[n % 2].spans.add()
        span.trace_id = bytes.fromhex(TRACE)
        span.span_id = (n + 1).to_bytes(8, "big")
        span.name = f"s{n}"
        span.start_time_unix_nano = NS + n
    return request.SerializeToString()


def json_export(count: int) -> bytes:
    spans = [
        {"traceId": TRACE, "spanId": f"{n + 1:016x}", "name": f"s{n}", "startTimeUnixNano": NS + n}
        for n in range(count)
    ]
    halves = [{"scopeSpans": [{"spans": spans[:1]}]}, {"scopeSpans": [{"spans": spans[1:]}]}]
    return json.dumps({"resourceSpans": halves}).encode()


def test_a_protobuf_export_over_the_cap_gets_413_naming_the_cap_and_stores_nothing(post, settings):
    settings.TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT = 100
    response = post(protobuf_export(101))
    assert response.status_code == 413
    message = RpcStatus.FromString(response.content).message
    assert "101 spans, more than the limit of 100 spans per export" in message
    assert "TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT" in message
    assert not Span.objects.exists() and not Trace.objects.exists()


def test_a_json_export_over_the_cap_gets_413_naming_the_cap_and_stores_nothing(post, settings):
    settings.TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT = 100
    response = post(json_export(101), content_type="application/json")
    assert response.status_code == 413
    message = response.json()["error"]
    assert "101 spans, more than the limit of 100 spans per export" in message
    assert "TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT" in message
    assert not Span.objects.exists()


@pytest.mark.parametrize("encoding", [PROTOBUF, "application/json"])
def test_an_export_of_exactly_the_cap_is_stored_whole(post, settings, encoding):
    settings.TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT = 100
    data = protobuf_export(100) if encoding == PROTOBUF else json_export(100)
    response = post(data, content_type=encoding)
    assert response.status_code == 200
    assert Trace.objects.get(trace_id=TRACE).span_count == 100


def test_a_small_gzip_body_of_tiny_spans_is_refused_by_the_default_cap(post):
    raw = protobuf_export(60_000)
    data = gzip.compress(raw)
    assert len(data) < 1_000_000 and len(raw) < 32 * 1024 * 1024  # under the body limits
    response = post(data, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    message = RpcStatus.FromString(response.content).message
    assert "60,000 spans, more than the limit of 50,000 spans per export" in message
    assert not Span.objects.exists()
