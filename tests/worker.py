"""Run a real ``manage.py qcluster`` worker on the test database.

``run_worker()`` is a context manager that starts the worker in its own process
group, with ``DATABASE_URL`` pointing at the database the tests use, and kills
the whole group (SIGKILL) on exit; ``qcluster_worker`` is the pytest fixture.
The broker is whatever the environment says: Redis when ``REDIS_URL`` is set,
otherwise the ORM broker on the test database. A unique queue name keeps two
test runs from taking each other's tasks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
WORKER_SCORERS = "scoring.tests.worker_scorers"


def database_url() -> str:
    """A DATABASE_URL for the database this test process is connected to."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = quote(s.get("USER") or "", safe="")
    password = quote(s.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{s['NAME']}"


class Worker:
    """A running qcluster process; ``kill()`` stops it the hard way (SIGKILL)."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url()
    env.setdefault("TRACESCORE_QUEUE_NAME", f"ts-test-{uuid.uuid4().hex[:8]}")
    scorers = [p for p in env.get("TRACESCORE_EXTRA_SCORERS", "").split(",") if p]
    if WORKER_SCORERS not in scorers:
        scorers.append(WORKER_SCORERS)
    env["TRACESCORE_EXTRA_SCORERS"] = ",".join(scorers)
    env.setdefault("TRACESCORE_WORKERS", "2")
    env.setdefault("TRACESCORE_QUEUE_POLL", "0.1")
    env.update(extra)
    return env


@contextlib.contextmanager
def run_worker(log_path: Path | None = None, **extra_env: str):
    """Start a qcluster on the test database; yield the Worker; SIGKILL it afterwards.

    The worker must share the queue name with the test process (tasks are
    queued by the web side): pass the same TRACESCORE_QUEUE_NAME, or rely on
    the default, the name in this process's settings.
    """
    from django.conf import settings

    extra_env.setdefault("TRACESCORE_QUEUE_NAME", settings.Q_CLUSTER["name"])
    log_path = log_path or Path(f"/tmp/qcluster-{uuid.uuid4().hex[:8]}.log")
    worker = Worker(worker_env(**extra_env), log_path).start()
    try:
        yield worker
    finally:
        worker.kill()


@pytest.fixture
def qcluster_worker(transactional_db, tmp_path):
    """A real worker process on the test database, killed after the test."""
    with run_worker(tmp_path / "qcluster.log") as worker:
        yield worker


def wait_for(predicate, timeout: float = 30, interval: float = 0.2, message: str = ""):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message or f"Condition not met within {timeout} s")


def queued_tasks(broker) -> list[dict]:
    """Take every task out of the broker, in order: django-q2's signed task packages,
    opened (``func``, ``args``, …)."""
    from django_q.signing import SignedPackage

    tasks = []
    while broker.queue_size():
        for _, payload in broker.dequeue() or []:
            tasks.append(SignedPackage.loads(payload))
    return tasks


def queued_score_ids(broker) -> list[int]:
    """The Score ids of every scoring task waiting in the broker (which it empties)."""
    ids = []
    for task in queued_tasks(broker):
        if task["func"] in ("scoring.tasks.score_chunk", "scoring.tasks.score_trace"):
            args = task["args"][0]
            ids += list(args) if isinstance(args, list | tuple) else [args]
    return ids


@contextlib.contextmanager
def no_worker():
    """Tasks go to the broker and nobody runs them (django-q2 out of sync mode)."""
    from django_q.conf import Conf

    Conf.SYNC = False
    try:
        yield
    finally:
        Conf.SYNC = True
