"""Chunked request bodies, as every Node OTLP exporter sends them, through the real servers.

Each export is sent with ``Transfer-Encoding: chunked`` and no
``Content-Length`` (``requests`` does that for a generator body) to gunicorn,
the production command, and to ``manage.py start``, what ``make run`` runs.
"""

from __future__ import annotations

import gzip
import json
import signal
import socket
import time
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from observability.models import Trace
from observability.services import create_ingest_key
from observability.tests.test_ingest_otlp import PROTOBUF, TRACE, body, child_span, root_span
from tests.live_server import run_gunicorn, run_make_start

pytestmark = pytest.mark.django_db(transaction=True)


def chunks(data: bytes, size: int = 1000):
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture
def secret(transactional_db):
    return create_ingest_key(name="chunked")[1]


def send_chunked(url, secret, data, content_type=PROTOBUF, **headers):
    return requests.post(
        f"{url}/v1/traces",
        data=chunks(data),
        headers={"Content-Type": content_type, "Authorization": f"Bearer {secret}", **headers},
        timeout=30,
    )


def big_export() -> bytes:
    return body(*[child_span(n, start_ms=10 + n) for n in range(1, 60)], root_span())


def test_a_chunked_protobuf_export_is_stored_whole_by_gunicorn(gunicorn_server, secret):
    data = big_export()
    assert len(data) > 3000  # several chunks

    response = send_chunked(gunicorn_server.url, secret, data)

    assert response.status_code == 200, response.content
    assert (
        ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    )
    trace = Trace.objects.get(trace_id=TRACE.hex())
    assert (trace.span_count, trace.name) == (60, "agent run: support-agent")


def test_chunked_gzip_and_json_exports_are_stored_whole_by_gunicorn(gunicorn_server, secret):
    gz = send_chunked(
        gunicorn_server.url, secret, gzip.compress(big_export()), **{"Content-Encoding": "gzip"}
    )
    assert gz.status_code == 200, gz.content
    assert Trace.objects.get(trace_id=TRACE.hex()).span_count == 60

    other = "5" * 32
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": other,
                                "spanId": "00000000000000a1",
                                "name": "agent run",
                                "startTimeUnixNano": "1764320400000000000",
                                "endTimeUnixNano": "1764320401000000000",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    js = send_chunked(
        gunicorn_server.url, secret, json.dumps(document).encode(), content_type="application/json"
    )
    assert js.status_code == 200, js.content
    assert Trace.objects.get(trace_id=other).span_count == 1


def test_a_chunked_body_over_the_limit_is_refused_with_413_and_nothing_stored(
    transactional_db, tmp_path, secret
):
    with run_gunicorn(tmp_path / "g.log", TRACESCORE_INGEST_MAX_BODY_BYTES="2000") as server:
        response = send_chunked(server.url, secret, big_export())

    assert response.status_code == 413
    assert not Trace.objects.exists()


def test_a_body_announced_over_the_limit_is_refused_with_413_before_it_is_sent(
    transactional_db, tmp_path, secret
):
    with run_gunicorn(tmp_path / "g.log", TRACESCORE_INGEST_MAX_BODY_BYTES="2000") as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = (
                f"POST /v1/traces HTTP/1.1\r\nHost: {host}\r\nContent-Type: {PROTOBUF}\r\n"
                f"Authorization: Bearer {secret}\r\nContent-Length: 1000000\r\n"
                "Connection: close\r\n\r\n"
            )
            sock.sendall(head.encode() + b"\0" * 100)  # the rest never comes
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"limit of 2000 bytes" in answer
    assert not Trace.objects.exists()


def test_a_body_cut_short_of_its_content_length_is_not_acknowledged_and_nothing_is_stored(
    gunicorn_server, secret
):
    data = big_export()
    host, port = gunicorn_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (
            f"POST /v1/traces HTTP/1.1\r\nHost: {host}\r\nContent-Type: {PROTOBUF}\r\n"
            f"Authorization: Bearer {secret}\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: len(data) // 2])
        sock.shutdown(socket.SHUT_WR)  # the client goes away mid-body
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    # The server closes a connection whose client went away mid-body; no view
    # runs for a body that never ended, so there is no answer to send, least of
    # all a 200 an exporter would take for "stored".
    assert answer == b"", answer[:200]
    assert not Trace.objects.exists()
    assert requests.get(f"{gunicorn_server.url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP])
def test_make_runs_server_stores_a_chunked_export_and_a_stop_signal_ends_server_and_worker(
    transactional_db, tmp_path, secret, stop_signal
):
    with run_make_start(tmp_path / "start.log") as server:
        start = server.process
        response = send_chunked(
            server.url, secret, gzip.compress(big_export()), **{"Content-Encoding": "gzip"}
        )
        assert response.status_code == 200, response.content
        assert Trace.objects.get(trace_id=TRACE.hex()).span_count == 60
        children = _children(start.pid)
        assert len(children) == 2, children  # the web server and qcluster

        start.send_signal(stop_signal)
        start.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        assert not [pid for pid in children if _alive(pid)], server.log()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{server.url}/healthz", timeout=2)


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
