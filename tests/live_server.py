"""Run the production web server on the test database.

Django's ``live_server`` is a development server: it cannot read chunked
request bodies, which real Node exporters send. ``gunicorn_server`` starts the
README's production command (gunicorn with uvicorn workers serving
``tracescore.asgi``, from ``tracescore.server``) on a free loopback port, with
``DATABASE_URL`` pointing at the database the tests use, and kills it after
the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.worker import ROOT, database_url
from tracescore.server import gunicorn_command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def wait_until_up(url: str, process: subprocess.Popen, log_path: Path, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The server exited: {log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=10):
                return
        except urllib.error.HTTPError:
            return  # it answered, if only to say the database is not there
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"The server did not answer within {seconds} s")


@contextlib.contextmanager
def run_server(command: list[str], log_path: Path, port: int, env: dict[str, str]):
    """Start ``command`` (a server on ``port``) in its own process group, wait until it
    answers, yield a LiveServer, and SIGKILL the whole group afterwards."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until_up(server.url, process, log_path)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def run_gunicorn(log_path: Path, *, workers: int = 2, **extra_env: str):
    """The production command on the test database; yields a LiveServer, SIGKILLs it afterwards."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "DEBUG": "true", **extra_env}
    command = gunicorn_command(
        f"127.0.0.1:{port}", workers=workers, bin_dir=Path(sys.executable).parent
    )
    with run_server(command, log_path, port, env) as server:
        yield server


@contextlib.contextmanager
def run_make_start(log_path: Path):
    """``manage.py start`` (what ``make run`` runs: web server and worker) on the test database."""
    from tests.worker import worker_env

    port = free_port()
    env = worker_env(DATABASE_URL=database_url(), DEBUG="true")
    command = [sys.executable, "manage.py", "start", f"127.0.0.1:{port}"]
    with run_server(command, log_path, port, env) as server:
        yield server


@pytest.fixture
def gunicorn_server(transactional_db, tmp_path):
    """The production web server on the test database, killed after the test."""
    with run_gunicorn(tmp_path / "gunicorn.log") as server:
        yield server


def api_caller(base_url: str, token: str, *, timeout: float):
    """``call(method, path, body=None) -> (status, JSON answer)``: the API over real HTTP
    with a DRF token, as an outside client calls it (an empty answer reads as {})."""

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return call
