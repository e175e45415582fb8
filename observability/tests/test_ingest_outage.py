"""A PostgreSQL that goes away and comes back: exporters get 503, then success, and lose nothing.

gunicorn reaches the test database through a TCP proxy on loopback; stopping
the proxy closes every connection and refuses new ones, as a database restart
does. SQLite has no server to lose, so these run on PostgreSQL (as in CI).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import requests
from django.db import connection

from observability.models import Trace
from observability.services import create_ingest_key
from observability.tests.test_ingest_otlp import PROTOBUF, TRACE, body, child_span, root_span
from tests.live_server import run_gunicorn
from tests.worker import database_url

pytestmark = pytest.mark.django_db(transaction=True)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``stop()`` drops every connection and refuses."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self.lock:
            if self.listener:
                with contextlib.suppress(OSError):
                    self.listener.shutdown(socket.SHUT_RDWR)
                self.listener.close()
                self.listener = None
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxied_server(transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("Needs PostgreSQL: SQLite has no database server to lose.")
    settings = connection.settings_dict
    proxy = TcpProxy((settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432)))
    proxy.start()
    url = database_url().replace(f":{settings.get('PORT') or 5432}/", f":{proxy.port}/")
    try:
        with run_gunicorn(
            tmp_path / "gunicorn.log", DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT="2"
        ) as server:
            yield server, proxy
    finally:
        proxy.stop()


def export(url, secret, *spans):
    return requests.post(
        f"{url}/v1/traces",
        data=body(*spans),
        headers={"Content-Type": PROTOBUF, "Authorization": f"Bearer {secret}"},
        timeout=30,
    )


def test_ingest_answers_503_while_the_database_is_down_and_stores_once_it_is_back(
    proxied_server,
):
    server, proxy = proxied_server
    secret = create_ingest_key(name="outage")[1]
    assert export(server.url, secret, child_span(1)).status_code == 200

    proxy.stop()
    started = time.monotonic()
    down = export(server.url, secret, child_span(2, start_ms=600))
    spans_down = requests.post(
        f"{server.url}/api/spans",
        json={"spans": []},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    health = requests.get(f"{server.url}/healthz", timeout=30)
    took = time.monotonic() - started

    assert down.status_code == 503, down.content
    assert down.headers["Retry-After"]
    assert spans_down.status_code == 503, spans_down.content
    assert "retry" in spans_down.json()["error"].lower()
    assert spans_down.headers["Retry-After"]
    assert health.status_code == 503
    assert took < 15

    proxy.start()
    # What the exporter does next: send the refused export again.
    again = export(server.url, secret, child_span(2, start_ms=600), root_span())
    assert again.status_code == 200, again.content
    assert Trace.objects.get(trace_id=TRACE.hex()).span_count == 3


def test_a_database_that_accepts_connections_but_never_answers_gets_503_within_the_bound(
    transactional_db, tmp_path
):
    secret = create_ingest_key(name="outage")[1]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepts (the kernel does), never says a word
    port = silent.getsockname()[1]
    try:
        with run_gunicorn(
            tmp_path / "gunicorn.log",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/tracescore",
            DATABASE_CONNECT_TIMEOUT="2",
        ) as server:
            started = time.monotonic()
            health = requests.get(f"{server.url}/healthz", timeout=30)
            health_took = time.monotonic() - started
            started = time.monotonic()
            ingest = export(server.url, secret, root_span())
            ingest_took = time.monotonic() - started
    finally:
        silent.close()

    assert health.status_code == 503
    assert health_took < 5
    assert ingest.status_code == 503
    assert ingest.headers["Retry-After"]
    assert ingest_took < 10
