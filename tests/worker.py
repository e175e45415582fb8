"""A real django-q2 worker (``manage.py qcluster``) on the test database.

Used by the end-to-end tests: the worker is a separate process that reads the
queue (Redis when REDIS_URL is set, as in CI, else the database) and writes
scores into the same test database the test reads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    """DATABASE_URL of the database the tests are using right now."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] or ""
    if s["PASSWORD"]:
        auth += f":{s['PASSWORD']}"
    host = s["HOST"] or "127.0.0.1"
    port = f":{s['PORT']}" if s["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{s['NAME']}"


@contextlib.contextmanager
def run_qcluster(**env: str) -> Iterator[subprocess.Popen]:
    """Start ``manage.py qcluster`` in its own process group; stop it on exit."""
    environment = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DEBUG": "true",
        "TRACESCORE_QUEUE_POLL": "0.1",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        kill(process, signal.SIGTERM)


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the worker's whole process group and wait for it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(predicate, timeout: float = 30, interval: float = 0.2):
    """Poll until ``predicate()`` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Gave up after {timeout:g} s waiting for {predicate.__doc__ or predicate}")


@pytest.fixture
def qcluster_worker(transactional_db) -> Iterator[subprocess.Popen]:
    with run_qcluster() as process:
        yield process
