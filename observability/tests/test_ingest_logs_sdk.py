"""Real clients and servers: the OpenTelemetry Python SDK exporting logs and spans to a
live tracescore, and chunked exports through gunicorn."""

import gzip

import pytest
import requests
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from observability.models import LogRecord
from tests.factories import EVIL

pytestmark = pytest.mark.django_db(transaction=True)


class Recording(LogRecordExporter):
    """Passes batches to the real exporter and keeps what it reported."""

    def __init__(self, exporter: OTLPLogExporter):
        self.exporter, self.results = exporter, []

    def export(self, batch):
        self.results.append(self.exporter.export(batch))
        return self.results[-1]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.exporter.shutdown()


@pytest.fixture
def telemetry(live_server, transactional_db):
    """A tracer and a logger whose exporters send to the live server with an ingest key.

    The log exporter's HTTP session keeps every response, so a test can read
    what tracescore answered (the SDK itself ignores partial success).
    """
    from observability.services import create_ingest_key

    _, good_secret = create_ingest_key(name="sdk logs")
    providers = []

    def make(compression=Compression.NoCompression, secret=good_secret):
        resource = Resource.create({"service.name": "shop-support"})
        headers = {"Authorization": f"Bearer {secret}"}
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(
                OTLPSpanExporter(
                    endpoint=f"{live_server.url}/v1/traces", headers=headers, timeout=10
                )
            )
        )
        session = requests.Session()
        session.responses = []
        session.hooks["response"].append(lambda response, **_: session.responses.append(response))
        exporter = Recording(
            OTLPLogExporter(
                endpoint=f"{live_server.url}/v1/logs",
                headers=headers,
                timeout=10,
                compression=compression,
                session=session,
            )
        )
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        providers.extend([tracer_provider, logger_provider])
        return (
            tracer_provider.get_tracer("support-agent"),
            logger_provider.get_logger("support-agent"),
            exporter,
            session.responses,
        )

    yield make
    for provider in providers:
        provider.shutdown()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_a_log_emitted_inside_a_span_shows_escaped_in_that_spans_panel(
    telemetry, alice_client, compression
):
    tracer, logger, exporter, _ = telemetry(compression)
    with tracer.start_as_current_span("agent run: support-agent") as root:
        with tracer.start_as_current_span("lookup_order") as tool:
            logger.emit(
                body=f"orders-api answered 429 {EVIL}",
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                attributes={"http.status_code": 429, "order.id": "1042"},
            )
        logger.emit(body="Agent finished", severity_number=SeverityNumber.INFO)
    assert exporter.results == [LogRecordExportResult.SUCCESS] * 2
    trace_id = format(root.get_span_context().trace_id, "032x")
    tool_id = format(tool.get_span_context().span_id, "016x")
    root_id = format(root.get_span_context().span_id, "016x")

    assert set(LogRecord.objects.values_list("span_id", "trace_id")) == {
        (tool_id, trace_id),
        (root_id, trace_id),
    }
    html = alice_client.get(f"/traces/{trace_id}/?span={tool_id}").content.decode()
    panel = html.split('id="span-panel"')[1]
    assert "<script>alert(1)</script>" not in html
    assert "orders-api answered 429 &lt;script&gt;alert(1)&lt;/script&gt;" in panel
    assert '<span class="log-severity">WARN</span>' in panel
    assert "&quot;http.status_code&quot;: 429" in panel
    assert "Agent finished" not in panel
    root_panel = alice_client.get(f"/traces/{trace_id}/").content.decode()
    assert "Agent finished" in root_panel.split('id="span-panel"')[1]


def test_a_log_outside_any_span_is_answered_with_a_partial_success(telemetry):
    _, logger, exporter, responses = telemetry()
    logger.emit(body="started without a trace", severity_number=SeverityNumber.INFO)

    assert exporter.results == [LogRecordExportResult.SUCCESS]
    (response,) = responses
    assert response.status_code == 200
    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_log_records == 1
    assert "without a trace id are not kept" in partial.error_message
    assert not LogRecord.objects.exists()


def test_an_unknown_key_fails_the_export_with_401(telemetry):
    tracer, logger, exporter, responses = telemetry(secret="tsk_not-a-real-key")
    with tracer.start_as_current_span("agent run"):
        logger.emit(body="never stored", severity_number=SeverityNumber.INFO)

    assert exporter.results == [LogRecordExportResult.FAILURE]
    assert [r.status_code for r in responses] == [401]
    assert "ingest key" in RpcStatus.FromString(responses[0].content).message
    assert not LogRecord.objects.exists()


def chunks(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_chunked_gzip_logs_export_is_stored_whole_by_gunicorn(gunicorn_server):
    from observability.services import create_ingest_key
    from observability.tests.test_ingest_logs import body, log

    secret = create_ingest_key(name="chunked logs")[1]
    data = gzip.compress(body(*[log(f"step {n} " + "x" * 200, at_ms=n) for n in range(200)]))
    assert len(data) > 2000  # several chunks, no Content-Length
    response = requests.post(
        f"{gunicorn_server.url}/v1/logs",
        data=chunks(data),
        headers={
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {secret}",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.content
    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_log_records == 0
    assert LogRecord.objects.count() == 200


def test_gunicorn_answers_an_otlp_metrics_export_with_a_status_not_a_page(gunicorn_server):
    response = requests.post(
        f"{gunicorn_server.url}/v1/metrics",
        data=b"\x0a\x00",
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert "does not receive /v1/metrics" in RpcStatus.FromString(response.content).message
