"""POST /v1/traces: what an OTLP exporter sees for good, duplicate and bad exports."""

import gzip
from pathlib import Path

import pytest
from django.urls import reverse
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from observability.models import Span as StoredSpan
from observability.models import Trace
from observability.services import create_ingest_key, revoke_ingest_key

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parent / "fixtures" / "otlp_export.json"
PROTOBUF = "application/x-protobuf"
NS = 1_764_320_400_000_000_000
MS = 1_000_000
TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
ROOT = bytes.fromhex("00f067aa0ba902b7")


def attrs(**values):
    out = []
    for key, value in values.items():
        key = key.replace("__", ".")
        if isinstance(value, int):
            out.append(KeyValue(key=key, value=AnyValue(int_value=value)))
        else:
            out.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return out


def root_span(trace_id=TRACE, name="agent run: support-agent", end_ms=3000, **kw):
    return Span(
        trace_id=trace_id,
        span_id=ROOT,
        name=name,
        start_time_unix_nano=NS,
        end_time_unix_nano=NS + end_ms * MS,
        attributes=attrs(
            openinference__span__kind="AGENT",
            input__value="Where is my order 1042?",
            output__value="It shipped yesterday.",
        ),
        status=Status(code=Status.STATUS_CODE_OK),
        **kw,
    )


def child_span(number, trace_id=TRACE, start_ms=10, name=None, **kw):
    return Span(
        trace_id=trace_id,
        span_id=bytes([0, 0, 0, 0, 0, 0, 1, number]),
        parent_span_id=ROOT,
        name=name or f"chat gpt-4o-mini #{number}",
        start_time_unix_nano=NS + start_ms * MS,
        end_time_unix_nano=NS + (start_ms + 500) * MS,
        attributes=attrs(
            openinference__span__kind="LLM",
            llm__model_name="gpt-4o-mini",
            llm__token_count__prompt=100,
            llm__token_count__completion=20,
        ),
        **kw,
    )


def body(*spans):
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={
                    "attributes": [
                        KeyValue(key="service.name", value=AnyValue(string_value="shop-support"))
                    ]
                },
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )
    return request.SerializeToString()


@pytest.fixture
def ingest_key(db):
    return create_ingest_key(name="tests")


@pytest.fixture
def post(client, ingest_key):
    _, secret = ingest_key

    def send(data, content_type=PROTOBUF, key=secret, **headers):
        if key is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return client.generic(
            "POST", reverse("otlp-traces"), data, content_type=content_type, **headers
        )

    return send


def stored():
    """Everything a user could see, to check that a refused request changed nothing."""
    return (
        list(Trace.objects.values_list("trace_id", "name", "span_count", "status", "duration_ms")),
        list(StoredSpan.objects.values_list("span_id", "name", "output", "status")),
    )


def test_a_protobuf_export_is_stored_with_parents_types_and_a_trace_summary(post):
    response = post(body(child_span(1), child_span(2, start_ms=600), root_span()))

    assert response.status_code == 200
    assert response["Content-Type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 0
    trace = Trace.objects.get(trace_id=TRACE.hex())
    assert (trace.name, trace.span_type, trace.span_count) == (
        "agent run: support-agent",
        "agent_run",
        3,
    )
    assert trace.duration_ms == 3000
    assert trace.service_name == "shop-support"
    assert (trace.input_tokens, trace.output_tokens) == (200, 40)
    children = trace.spans.exclude(span_id=ROOT.hex())
    assert {s.parent_span_id for s in children} == {ROOT.hex()}
    assert {(s.span_type, s.model) for s in children} == {("llm_generation", "gpt-4o-mini")}
    root = trace.spans.get(span_id=ROOT.hex())
    assert (root.input, root.output) == ("Where is my order 1042?", "It shipped yesterday.")


def test_the_otlp_json_fixture_is_stored_and_its_bad_span_is_counted_as_rejected(post):
    response = post(FIXTURE.read_bytes(), content_type="application/json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "malformed span id" in partial["errorMessage"]
    trace = Trace.objects.get(trace_id="5b8efff798038103d269b633813fc60c")
    assert (trace.name, trace.span_count, trace.span_type) == (
        "invoke_agent weather-agent",
        3,
        "agent_run",
    )
    tool = trace.spans.get(span_id="eee19b7ec3c1b175")
    assert tool.input == {"city": "Lyon"}
    assert tool.span_type == "tool_call"


def test_a_gzip_body_is_accepted(post):
    response = post(gzip.compress(body(root_span())), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert Trace.objects.get(trace_id=TRACE.hex()).span_count == 1


def test_sending_the_same_export_twice_changes_nothing(post):
    export = body(child_span(1), root_span())
    post(export)
    before = stored()
    response = post(export)
    assert response.status_code == 200
    assert stored() == before
    assert StoredSpan.objects.count() == 2


def test_a_resent_span_with_new_data_replaces_the_old_one(post):
    post(body(root_span()))
    post(body(root_span(name="agent run: renamed", end_ms=4000)))
    trace = Trace.objects.get(trace_id=TRACE.hex())
    assert (trace.name, trace.duration_ms, trace.span_count) == ("agent run: renamed", 4000, 1)


def test_children_first_then_the_root_in_another_request_gives_the_right_trace(post):
    post(body(child_span(1), child_span(2, start_ms=700)))
    trace = Trace.objects.get(trace_id=TRACE.hex())
    assert (trace.has_root, trace.span_count, trace.status) == (False, 2, "unset")

    post(body(root_span()))
    trace.refresh_from_db()
    assert (trace.has_root, trace.name, trace.span_type, trace.span_count) == (
        True,
        "agent run: support-agent",
        "agent_run",
        3,
    )
    assert trace.status == "ok"


def test_an_error_span_marks_the_trace_as_failed_with_its_message(post):
    failing = child_span(1, status=Status(code=Status.STATUS_CODE_ERROR, message="rate limited"))
    post(body(failing, root_span()))
    trace = Trace.objects.get(trace_id=TRACE.hex())
    assert (trace.status, trace.has_error, trace.error_message) == ("error", True, "rate limited")


@pytest.mark.parametrize("trace_count", [1, 40, 200])
def test_one_export_costs_a_bounded_number_of_queries_however_many_spans(
    post, django_assert_max_num_queries, trace_count
):
    traces = [n.to_bytes(16, "big") for n in range(1, trace_count + 1)]
    spans = [child_span(n, trace_id=t) for t in traces for n in range(1, 6)]
    spans += [root_span(trace_id=t) for t in traces]
    # The same ceiling for 6 spans as for 1,200 (on PostgreSQL the rows travel in
    # one COPY, which the counter does not see; it is one statement however many).
    with django_assert_max_num_queries(13):
        response = post(body(*spans))
    assert response.status_code == 200
    assert StoredSpan.objects.count() == 6 * trace_count
    assert set(Trace.objects.values_list("span_count", flat=True)) == {6}
    assert Trace.objects.filter(has_root=True, input_tokens=500).count() == trace_count


def test_bad_ids_are_rejected_span_by_span_and_the_good_spans_are_stored(post):
    bad_trace = child_span(1, trace_id=b"\x01\x02\x03")
    no_span_id = Span(trace_id=TRACE, name="nameless", start_time_unix_nano=NS)
    no_start = Span(trace_id=TRACE, span_id=b"\x07" * 8, name="timeless")
    response = post(body(bad_trace, no_span_id, no_start, root_span()))

    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 3
    assert "malformed trace id" in partial.error_message
    assert "no span id" in partial.error_message
    assert "no start time" in partial.error_message
    assert list(StoredSpan.objects.values_list("span_id", flat=True)) == [ROOT.hex()]


@pytest.mark.parametrize(
    ("data", "content_type", "headers", "message"),
    [
        (b"\x0a\xff\xff\xff garbage", PROTOBUF, {}, "not a protobuf"),
        (b"{this is not json", "application/json", {}, "not valid JSON"),
        (b'{"resourceSpans": "nope"}', "application/json", {}, "not an OTLP/JSON"),
        (b"plain bytes", PROTOBUF, {"HTTP_CONTENT_ENCODING": "gzip"}, "not valid gzip"),
    ],
)
def test_undecodable_bodies_get_400_with_a_message_and_change_nothing(
    post, data, content_type, headers, message
):
    post(body(root_span()))
    before = stored()
    response = post(data, content_type=content_type, **headers)
    assert response.status_code == 400
    if content_type == PROTOBUF:
        assert message in RpcStatus.FromString(response.content).message
    else:
        assert message in response.json()["error"]
    assert stored() == before


def test_a_gzip_body_of_two_members_is_stored_whole(post):
    first = gzip.compress(body(child_span(1)))
    second = gzip.compress(body(child_span(2, start_ms=600), root_span()))
    # Two exports back to back: protobuf messages concatenate into one.
    response = post(first + second, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 200
    assert (
        ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    )
    assert Trace.objects.get(trace_id=TRACE.hex()).span_count == 3


@pytest.mark.parametrize(
    ("data", "content_type", "headers", "message"),
    [
        (b'{"resource_spanz": [{"scopeSpans": []}]}', "application/json", {}, "no spans"),
        (gzip.compress(b""), PROTOBUF, {"HTTP_CONTENT_ENCODING": "gzip"}, "no spans"),
    ],
)
def test_a_body_that_decodes_to_no_spans_is_refused_not_acknowledged(
    post, data, content_type, headers, message
):
    response = post(data, content_type=content_type, **headers)

    assert response.status_code == 400
    if content_type == PROTOBUF:
        assert message in RpcStatus.FromString(response.content).message
    else:
        assert message in response.json()["error"]


def test_other_content_types_get_415(post):
    response = post(b"resource_spans: []", content_type="text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["error"]
    response = post(body(root_span()), HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415
    assert not Trace.objects.exists()


@pytest.mark.parametrize("key", [None, "tsk_not-a-real-key", "not even the right shape"])
def test_requests_without_a_valid_key_get_401_and_store_nothing(post, key):
    response = post(body(root_span()), key=key)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "ingest key" in RpcStatus.FromString(response.content).message
    assert not Trace.objects.exists()


def test_a_revoked_key_gets_401(post, ingest_key):
    key, _ = ingest_key
    revoke_ingest_key(key=key)
    response = post(b"{}", content_type="application/json")
    assert response.status_code == 401
    assert "ingest key" in response.json()["error"]


def test_bodies_above_the_limit_get_413_before_and_after_decompression(post, settings):
    post(body(root_span()))
    before = stored()
    settings.TRACESCORE_INGEST_MAX_BODY_BYTES = 2_000
    big = body(*[child_span(n % 250, name="x" * 200) for n in range(20)])
    assert len(big) > 2_000

    response = post(big)
    assert response.status_code == 413
    assert "2000 bytes" in RpcStatus.FromString(response.content).message

    bomb = gzip.compress(b"\0" * 1_000_000)
    assert len(bomb) < 2_000
    response = post(bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "decompressed" in RpcStatus.FromString(response.content).message
    assert stored() == before


def test_get_is_not_allowed(client):
    assert client.get(reverse("otlp-traces")).status_code == 405


def test_an_export_with_no_body_is_accepted_and_stores_nothing(post):
    response = post(b"", CONTENT_TYPE=PROTOBUF)
    assert response.status_code == 200
    assert not Trace.objects.exists()


def test_the_json_answer_of_an_export_with_a_charset_is_json(post):
    response = post(FIXTURE.read_bytes(), content_type="application/json; charset=utf-8")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_nul_characters_from_an_exporter_are_dropped_on_every_database_instead_of_failing(post):
    # PostgreSQL text and jsonb cannot hold NUL; SQLite drops them too, so a
    # span reads the same whichever database stores it.
    span = root_span(name="agent\x00run")
    span.attributes.append(KeyValue(key="note", value=AnyValue(string_value="a\x00b")))
    response = post(body(span))
    assert response.status_code == 200
    stored_span = StoredSpan.objects.get()
    assert stored_span.name == "agentrun"
    assert stored_span.attributes["note"] == "ab"


def test_a_database_failure_answers_503_so_the_exporter_retries(post, monkeypatch):
    from django.db import OperationalError

    from observability import ingest_views

    def unavailable(records):
        raise OperationalError("could not obtain lock")

    monkeypatch.setattr(ingest_views, "ingest_spans", unavailable)
    response = post(body(root_span()))
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "retry" in RpcStatus.FromString(response.content).message
