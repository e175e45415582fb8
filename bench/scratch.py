"""What the Django benchmarks share: a scratch PostgreSQL database with the app set up on
it, and a real ``manage.py qcluster`` on it.

    with scratch_django(args.database_url, "ts_bench_x", keep=args.keep, REDIS_URL=…) as env:
        from scoring.models import Score  # Django is set up on the scratch database
        with qcluster(env):
            ...

The database is created, migrated, and dropped at the end unless ``keep``; the
settings are the production ones (``DEBUG`` off) with the given environment
variables on top, for this process and for the processes started with ``env``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def scratch_django(database_url: str, prefix: str, *, keep: bool = False, **environ: str):
    """Create and migrate a scratch database beside ``database_url``'s, set Django up on
    it with ``environ`` as settings, and yield the environment for child processes."""
    name = f"{prefix}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "bench",
        "ALLOWED_HOSTS": "testserver,localhost",
        "DATABASE_URL": database_url.rsplit("/", 1)[0] + f"/{name}",
        "DJANGO_SETTINGS_MODULE": "tracescore.settings",
        **environ,
    }
    os.environ.update(env)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True
        )
        import django

        django.setup()
        yield env
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not keep:
            with psycopg.connect(database_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def qcluster(env: dict[str, str], *, start_seconds: float = 3) -> Iterator[subprocess.Popen]:
    """A ``manage.py qcluster`` with ``env``, given ``start_seconds`` to start its
    workers; killed, with its workers, at the end."""
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(start_seconds)
        yield worker
    finally:
        os.killpg(worker.pid, 9)
        worker.wait()
