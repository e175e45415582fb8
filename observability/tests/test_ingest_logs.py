"""POST /v1/logs, and every other /v1/ path: what an OTLP exporter sees."""

import gzip
import json

import pytest
from django.urls import reverse
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from observability.models import LogRecord as StoredLog
from observability.models import Trace
from observability.services import create_ingest_key, revoke_ingest_key

pytestmark = pytest.mark.django_db

PROTOBUF = "application/x-protobuf"
NS = 1_764_320_400_000_000_000
MS = 1_000_000
TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
SPAN = bytes.fromhex("00f067aa0ba902b7")


def text(value):
    return AnyValue(string_value=value)


def log(body="Looking up order 1042", trace_id=TRACE, span_id=SPAN, at_ms=5, **kw):
    kw.setdefault("severity_number", 9)
    kw.setdefault("severity_text", "INFO")
    return LogRecord(
        time_unix_nano=NS + at_ms * MS,
        observed_time_unix_nano=NS + at_ms * MS + 1,
        body=body if isinstance(body, AnyValue) else text(body),
        trace_id=trace_id,
        span_id=span_id,
        attributes=[KeyValue(key="order.id", value=text("1042"))],
        **kw,
    )


def body(*records):
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource={"attributes": [KeyValue(key="service.name", value=text("shop"))]},
                scope_logs=[
                    ScopeLogs(scope=InstrumentationScope(name="support-agent"), log_records=records)
                ],
            )
        ]
    ).SerializeToString()


@pytest.fixture
def ingest_key(db):
    return create_ingest_key(name="log tests")


@pytest.fixture
def post(client, ingest_key):
    _, secret = ingest_key

    def send(data, content_type=PROTOBUF, key=secret, path="/v1/logs", **headers):
        if key is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return client.generic("POST", path, data, content_type=content_type, **headers)

    return send


def answer(response) -> ExportLogsServiceResponse:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == PROTOBUF
    return ExportLogsServiceResponse.FromString(response.content)


def test_the_logs_endpoint_is_at_the_path_every_exporter_defaults_to():
    assert reverse("otlp-logs") == "/v1/logs"


def test_a_protobuf_export_stores_each_record_with_its_trace_span_severity_and_body(post):
    structured = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="tool", value=text("lookup_order")),
                KeyValue(key="attempt", value=AnyValue(int_value=2)),
            ]
        )
    )
    response = post(
        body(log(), log(structured, at_ms=7, severity_number=17, severity_text="ERROR"))
    )

    assert answer(response).partial_success.rejected_log_records == 0
    first, second = StoredLog.objects.in_order()
    assert (first.trace_id, first.span_id) == (TRACE.hex(), SPAN.hex())
    assert (first.severity_number, first.severity_label, first.body) == (
        9,
        "INFO",
        "Looking up order 1042",
    )
    assert first.attributes == {"order.id": "1042"}
    assert (first.resource, first.scope_name) == ({"service.name": "shop"}, "support-agent")
    assert (second.time - first.time).total_seconds() == 0.002
    assert second.body == {"tool": "lookup_order", "attempt": 2}
    assert second.severity_level == "error"


def test_an_otlp_json_export_with_hex_ids_is_stored(post):
    export = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "mastra"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(NS),
                                "severityNumber": "SEVERITY_NUMBER_WARN",
                                "body": {"stringValue": "Retrying the model call"},
                                "traceId": TRACE.hex(),
                                "spanId": SPAN.hex(),
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = post(json.dumps(export).encode(), content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {}
    stored = StoredLog.objects.get()
    assert (stored.trace_id, stored.span_id, stored.body) == (
        TRACE.hex(),
        SPAN.hex(),
        "Retrying the model call",
    )
    assert (stored.severity_number, stored.severity_label, stored.scope_name) == (
        13,
        "WARN",
        "mastra",
    )


def test_a_gzip_body_is_accepted(post):
    response = post(gzip.compress(body(log())), HTTP_CONTENT_ENCODING="gzip")
    assert answer(response).partial_success.rejected_log_records == 0
    assert StoredLog.objects.get().body == "Looking up order 1042"


def test_records_without_a_trace_id_get_a_partial_success_that_says_why(post):
    response = post(
        body(
            log("kept"),
            log("no trace", trace_id=b""),
            log("also no trace", trace_id=b"", span_id=b""),
            log("bad trace", trace_id=b"\x01\x02"),
        )
    )

    partial = answer(response).partial_success
    assert partial.rejected_log_records == 3
    assert "2 × log records without a trace id are not kept" in partial.error_message
    assert "malformed trace id (2 bytes, expected 16)" in partial.error_message
    assert list(StoredLog.objects.values_list("body", flat=True)) == ["kept"]


def test_the_json_partial_success_is_json_too(post):
    export = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}
    response = post(json.dumps(export).encode(), content_type="application/json")
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"
    assert "without a trace id" in partial["errorMessage"]
    assert not StoredLog.objects.exists()


def test_a_log_without_a_span_id_is_kept_for_its_trace(post):
    answer(post(body(log("trace-level", span_id=b""))))
    assert StoredLog.objects.get().span_id == ""


def test_a_retried_export_stores_nothing_twice(post):
    export = body(log("one"), log("two", at_ms=6))
    answer(post(export))
    answer(post(export))
    answer(post(gzip.compress(export), HTTP_CONTENT_ENCODING="gzip"))
    assert sorted(StoredLog.objects.values_list("body", flat=True)) == ["one", "two"]


def test_two_records_that_differ_only_in_time_are_both_kept(post):
    answer(post(body(log("tick", at_ms=1), log("tick", at_ms=2))))
    assert StoredLog.objects.count() == 2


def test_logs_do_not_create_traces_before_their_spans_arrive(post):
    answer(post(body(log())))
    assert not Trace.objects.exists()


def test_a_log_without_any_timestamp_gets_the_time_it_was_received(post):
    record = log()
    record.time_unix_nano = 0
    record.observed_time_unix_nano = 0
    answer(post(body(record)))
    stored = StoredLog.objects.get()
    assert stored.time == stored.received_at


def test_nul_characters_are_dropped_instead_of_failing(post):
    record = log("a\x00b")
    record.attributes.append(KeyValue(key="k\x00ey", value=text("v\x00")))
    answer(post(body(record)))
    stored = StoredLog.objects.get()
    assert (stored.body, stored.attributes["key"]) == ("ab", "v")


@pytest.mark.parametrize("record_count", [1, 300])
def test_one_export_costs_the_same_queries_however_many_records(
    post, django_assert_num_queries, record_count
):
    records = [log(f"step {n}", at_ms=n) for n in range(record_count)]
    # key lookup, its last-used stamp, savepoint, one INSERT, release
    with django_assert_num_queries(5):
        answer(post(body(*records)))
    assert StoredLog.objects.count() == record_count


@pytest.mark.parametrize("key", [None, "tsk_not-a-real-key"])
def test_requests_without_a_valid_key_get_401_and_store_nothing(post, key):
    response = post(body(log()), key=key)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "ingest key" in RpcStatus.FromString(response.content).message
    assert not StoredLog.objects.exists()


def test_a_revoked_key_gets_401(post, ingest_key):
    revoke_ingest_key(key=ingest_key[0])
    response = post(b"{}", content_type="application/json")
    assert response.status_code == 401
    assert "ingest key" in response.json()["error"]


@pytest.mark.parametrize(
    ("data", "content_type", "headers", "message"),
    [
        (b"\x0a\xff\xff\xff garbage", PROTOBUF, {}, "not a protobuf ExportLogsServiceRequest"),
        (b"[1, 2]", "application/json", {}, "JSON object with a resourceLogs list"),
        (b'{"resourceLogs": "nope"}', "application/json", {}, "ExportLogsServiceRequest"),
        (b"plain bytes", PROTOBUF, {"HTTP_CONTENT_ENCODING": "gzip"}, "not valid gzip"),
    ],
)
def test_undecodable_bodies_get_400_with_a_message(post, data, content_type, headers, message):
    response = post(data, content_type=content_type, **headers)
    assert response.status_code == 400
    if content_type == PROTOBUF:
        assert message in RpcStatus.FromString(response.content).message
    else:
        assert message in response.json()["error"]
    assert not StoredLog.objects.exists()


def test_other_content_types_get_415(post):
    response = post(b"hello", content_type="text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["error"]


def test_bodies_above_the_limit_get_413(post, settings):
    settings.TRACESCORE_INGEST_MAX_BODY_BYTES = 1_000
    response = post(body(*[log("x" * 100, at_ms=n) for n in range(20)]))
    assert response.status_code == 413
    assert "1000 bytes" in RpcStatus.FromString(response.content).message
    assert not StoredLog.objects.exists()


def test_a_database_failure_answers_503_so_the_exporter_retries(post, monkeypatch):
    from django.db import OperationalError

    from observability import ingest_views

    def unavailable(records):
        raise OperationalError("could not obtain lock")

    monkeypatch.setattr(ingest_views, "ingest_logs", unavailable)
    response = post(body(log()))
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "retry" in RpcStatus.FromString(response.content).message


@pytest.mark.parametrize("path", ["/v1/metrics", "/v1/foo/bar", "/v1/traces/", "/v1/", "/v1"])
def test_other_v1_paths_answer_a_protobuf_status_404_to_protobuf_requests(post, path):
    response = post(b"\x0a\x00", path=path)
    assert response.status_code == 404
    assert response["Content-Type"] == PROTOBUF
    status = RpcStatus.FromString(response.content)
    assert status.code == 5  # NOT_FOUND
    assert f"does not receive {path}:" in status.message
    assert "/v1/traces" in status.message and "/v1/logs" in status.message


@pytest.mark.parametrize("method", ["get", "post"])
def test_other_v1_paths_answer_json_404_to_everyone_else_without_a_login(client, method):
    response = getattr(client, method)("/v1/metrics", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "does not receive /v1/metrics" in response.json()["error"]


def test_get_on_the_logs_endpoint_is_a_405_with_a_status_body(client):
    response = client.get("/v1/logs")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "POST" in response.json()["error"]
