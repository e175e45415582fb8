"""Slow clients cannot stall the site.

Twenty connections announce request bodies of over 1,000 bytes and trickle
them a few bytes a second, straight to the README's production command (no
proxy in front), with fewer server processes than connections. A server that
gives each body a worker (gunicorn's sync workers did) stops answering for as
long as the bodies take; the production server must keep answering, and still
read each trickled body whole once it ends.
"""

from __future__ import annotations

import os
import select
import shlex
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from observability.models import Trace
from observability.services import create_ingest_key
from observability.tests.test_ingest_otlp import PROTOBUF, body, child_span, root_span
from tests.live_server import run_gunicorn
from tracescore.server import gunicorn_command

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parent.parent / "README.md"
SLOW_CLIENTS = 20
SERVER_PROCESSES = 2  # as in the audit that found the stall; far fewer than the slow clients


class Trickle:
    """One connection sending a request whose body comes a few bytes at a time."""

    def __init__(self, url: str, path: str, payload: bytes, headers: dict[str, str]):
        host, port = url.removeprefix("http://").split(":")
        self.payload, self.sent = payload, 0
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(payload)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head += ["Connection: close", "", ""]
        self.sock.sendall("\r\n".join(head).encode())

    def send_some(self, size: int = 3) -> None:
        if self.sent < len(self.payload) - size:  # the end is kept for finish()
            self.sock.sendall(self.payload[self.sent : self.sent + size])
            self.sent += size

    def answered_early(self) -> bool:
        """Whether the server has already answered or closed the connection."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)  # an answer or the end of the connection is waiting

    def finish(self) -> tuple[int, bytes]:
        """Send the rest of the body; the status code and body of the answer."""
        self.sock.sendall(self.payload[self.sent :])
        answer = b""
        while chunk := self.sock.recv(65536):
            answer += chunk
        self.sock.close()
        head, _, content = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), content


def export_of_one_trace(number: int) -> tuple[str, bytes]:
    trace_id = os.urandom(15) + bytes([number])
    spans = [child_span(n, trace_id=trace_id, start_ms=10 + n) for n in range(1, 20)]
    return trace_id.hex(), body(*spans, root_span(trace_id=trace_id))


def test_the_readme_production_command_is_the_one_the_tests_start():
    lines = [line for line in README.read_text().splitlines() if "bin/gunicorn" in line]
    assert len(lines) == 1, lines
    command = shlex.split(lines[0].split("#")[0])
    assert command == gunicorn_command("0.0.0.0:8000", workers=4)


def test_healthz_answers_within_a_second_while_twenty_clients_trickle_their_bodies(
    transactional_db, tmp_path
):
    secret = create_ingest_key(name="slow clients")[1]
    exports = [export_of_one_trace(n) for n in range(SLOW_CLIENTS // 2)]
    assert all(len(data) > 1000 for _, data in exports)
    login = b"username=alice&password=" + b"x" * 1000

    with run_gunicorn(tmp_path / "server.log", workers=SERVER_PROCESSES) as server:
        traces = [
            Trickle(
                server.url,
                "/v1/traces",
                data,
                {"Content-Type": PROTOBUF, "Authorization": f"Bearer {secret}"},
            )
            for _, data in exports
        ]
        logins = [
            Trickle(
                server.url, "/login/", login, {"Content-Type": "application/x-www-form-urlencoded"}
            )
            for _ in range(SLOW_CLIENTS - len(exports))
        ]
        slow = traces + logins
        stop = threading.Event()

        def trickle():
            while not stop.is_set():
                for client in slow:
                    client.send_some()
                stop.wait(0.5)  # 3 bytes every half second: 6 bytes/s per connection

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            time.sleep(2)  # every slow client is now well into its body
            timings = []
            for _ in range(5):
                started = time.monotonic()
                try:
                    status = requests.get(f"{server.url}/healthz", timeout=5).status_code
                except requests.Timeout:
                    status = "no answer"
                timings.append((status, time.monotonic() - started))
                time.sleep(0.3)
            still_waiting = [not client.answered_early() for client in slow]
        finally:
            stop.set()
            trickler.join()

        assert all(status == 200 for status, _ in timings), timings
        assert max(took for _, took in timings) < 1, timings
        assert all(still_waiting), "the server cut slow clients off instead of reading them"

        # Each trickled body, once it ends, is read whole and answered.
        for client in traces:
            status, content = client.finish()
            assert status == 200, content
            response = ExportTraceServiceResponse.FromString(content)
            assert response.partial_success.rejected_spans == 0
        for client in logins:
            status, content = client.finish()
            assert status < 500, content

    stored = Trace.objects.filter(trace_id__in=[trace_id for trace_id, _ in exports])
    assert sorted(stored.values_list("span_count", flat=True)) == [20] * len(exports)
