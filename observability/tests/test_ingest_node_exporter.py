"""The official OpenTelemetry JS exporter, run by Node, exporting to a live tracescore.

``tests/node/otel-js/export.mjs`` builds an agent trace with the GenAI
conventions (an ``invoke_agent`` root, two ``chat`` calls, two ``execute_tool``
calls, about 100 kB of attributes) and exports it with
``@opentelemetry/exporter-trace-otlp-proto`` or ``-http`` (JSON) through a
BatchSpanProcessor. Node's exporters send the body with ``Transfer-Encoding:
chunked`` and no ``Content-Length``; the first test shows that on the wire.
The others check, through the trace API, that the production server (gunicorn)
and the server ``make run`` starts store the trace whole.

The npm packages come from ``tests/node/otel-js/package-lock.json``
(``make test`` runs ``npm ci`` there). Without Node or those packages the tests
are skipped, and fail when ``CI`` is set.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from observability.services import create_ingest_key
from tests.live_server import run_make_start
from tests.worker import ROOT

OTEL_JS = ROOT / "tests" / "node" / "otel-js"
EXPORT_SCRIPT = OTEL_JS / "export.mjs"
INSTALL_HINT = "run `make test`, or `npm ci --prefix tests/node/otel-js`"

# What export.mjs sends.
MODEL = "gpt-4o-mini-2024-07-18"
QUESTION = "Where is my order 1042, and did my last three orders ship to the new address?"
ANSWER = "Order 1042 shipped yesterday with UPS (tracking 1Z999AA10123456784)"
SPANS = [
    ("invoke_agent order-support", "agent_run"),
    (f"chat {MODEL}", "llm_generation"),
    (f"chat {MODEL}", "llm_generation"),
    ("execute_tool lookup_order", "tool_call"),
    ("execute_tool order_history", "tool_call"),
]


def node_exporter_problem() -> str | None:
    """Why the Node exporter cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return f"Node.js (20.6 or later) is not installed; install it, then {INSTALL_HINT}."
    if not (OTEL_JS / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-proto").is_dir():
        return f"The OpenTelemetry JS packages are not installed: {INSTALL_HINT}."
    return None


@pytest.fixture(scope="module")
def node_exporter():
    problem = node_exporter_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture
def secret(transactional_db):
    return create_ingest_key(name="node exporter")[1]


def export_with_node(url: str, secret: str, *, protocol="protobuf", compression="none"):
    """Run export.mjs against ``url``; return (exit code, its JSON report, stderr)."""
    trace_id = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [
            shutil.which("node"),
            str(EXPORT_SCRIPT),
            "--endpoint",
            f"{url}/v1/traces",
            "--key",
            secret,
            "--protocol",
            protocol,
            "--compression",
            compression,
            "--trace-id",
            trace_id,
        ],
        cwd=OTEL_JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else None
    assert report is None or report["traceId"] == trace_id, report
    return done.returncode, report or {"traceId": trace_id}, done.stderr


def assert_exported(code: int, report: dict, stderr: str) -> None:
    assert code == 0, f"the exporter failed: {report} {stderr}"
    assert report["exports"] == [{"spans": 5, "code": "success", "error": None}], report


def assert_stored_whole(api_client, trace_id: str) -> dict:
    """The trace as the API shows it: every span, types, the root's question and answer."""
    response = api_client.get(reverse("api-trace-detail", args=[trace_id]))
    assert response.status_code == 200, response.content
    trace = response.json()
    assert (trace["name"], trace["spanType"], trace["spanCount"], trace["hasRoot"]) == (
        "invoke_agent order-support",
        "agent_run",
        5,
        True,
    )
    assert trace["serviceName"] == "order-support"
    spans = trace["spans"]
    assert sorted((s["name"], s["spanType"]) for s in spans) == sorted(SPANS)

    (root,) = [s for s in spans if s["parentSpanId"] is None]
    assert {s["parentSpanId"] for s in spans if s is not root} == {root["spanId"]}
    assert QUESTION in json.dumps(root["input"]), root["input"]
    assert ANSWER in json.dumps(root["output"]), root["output"]

    chats = sorted(
        (s for s in spans if s["spanType"] == "llm_generation"), key=lambda s: s["startedAt"]
    )
    assert [(c["model"], c["inputTokens"], c["outputTokens"]) for c in chats] == [
        (MODEL, 412, 46),
        (MODEL, 1830, 64),
    ]
    assert ANSWER in json.dumps(chats[1]["output"])

    tools = {s["name"]: s for s in spans if s["spanType"] == "tool_call"}
    lookup = tools["execute_tool lookup_order"]
    assert lookup["input"] == {"order_id": "1042"}
    assert lookup["output"]["tracking"] == "1Z999AA10123456784"
    history = tools["execute_tool order_history"]
    assert history["input"] == {"customer_id": "cus_77", "limit": 250}
    assert len(history["output"]) == 250  # the large attribute arrived whole
    assert history["durationMs"] == pytest.approx(650, abs=1)
    return trace


# --- On the wire ---------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Records each request's headers and body chunks and answers an empty 200."""

    def do_POST(self):
        chunks = []
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
        else:
            chunks.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.requests.append((self.headers, chunks))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_node_exporter_sends_its_body_chunked_without_a_content_length(node_exporter):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        plain = export_with_node(url, "tsk_test")
        gzipped = export_with_node(url, "tsk_test", compression="gzip")
    finally:
        server.shutdown()
        server.server_close()
    assert_exported(*plain)
    assert_exported(*gzipped)

    assert len(server.requests) == 2
    for (headers, chunks), (_, report, _) in zip(server.requests, [plain, gzipped], strict=True):
        assert headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in headers
        assert headers["Authorization"] == "Bearer tsk_test"
        body = b"".join(chunks)
        if headers.get("Content-Encoding") == "gzip":
            assert len(chunks) > 1  # zlib's 16 kB pieces, each sent as one chunk
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        spans = [s for r in export.resource_spans for ss in r.scope_spans for s in ss.spans]
        assert len(spans) == 5
        assert {s.trace_id.hex() for s in spans} == {report["traceId"]}
    assert [h.get("Content-Encoding") for h, _ in server.requests] == [None, "gzip"]


# --- The production server -------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "compression"),
    [("protobuf", "none"), ("protobuf", "gzip"), ("json", "none")],
    ids=["protobuf", "protobuf-gzip", "json"],
)
def test_a_node_exporter_trace_is_stored_whole_by_gunicorn(
    node_exporter, gunicorn_server, secret, api_client, protocol, compression
):
    code, report, stderr = export_with_node(
        gunicorn_server.url, secret, protocol=protocol, compression=compression
    )

    assert_exported(code, report, stderr)
    assert_stored_whole(api_client, report["traceId"])


def test_a_genai_agent_trace_counts_each_token_once_in_its_totals(
    node_exporter, gunicorn_server, secret, api_client
):
    code, report, stderr = export_with_node(gunicorn_server.url, secret)
    if code != 0:
        pytest.fail(f"the exporter failed: {report} {stderr}")
    response = api_client.get(reverse("api-trace-detail", args=[report["traceId"]]))
    if response.status_code != 200 or response.json()["spanCount"] != 5:
        pytest.fail(f"the trace was not stored whole: {response.content[:300]!r}")

    trace = response.json()
    assert (trace["inputTokens"], trace["outputTokens"]) == (412 + 1830, 46 + 64)


# --- The server `make run` starts ----------------------------------------------------


def test_make_runs_server_stores_a_node_exporters_gzip_trace_whole(
    node_exporter, transactional_db, tmp_path, secret, api_client
):
    with run_make_start(tmp_path / "start.log") as server:
        code, report, stderr = export_with_node(server.url, secret, compression="gzip")

        assert_exported(code, report, stderr)
        assert_stored_whole(api_client, report["traceId"])
