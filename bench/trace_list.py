"""Trace list and detail benchmark: server time of the pages on 100,000 traces.

Not a test. It uses a scratch PostgreSQL database (created and migrated when
missing, kept between runs), seeds it once with ``manage.py seed_demo`` (about
600,000 spans; this takes minutes the first time, and is skipped when the
database already holds the traces), adds one 200-span trace, then times the
views in-process with Django's test ``Client`` and prints p50/p95 per page.

    .venv/bin/python bench/trace_list.py                  # 100,000 traces, 200 repetitions
    .venv/bin/python bench/trace_list.py --traces 20000 --runs 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--traces", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    p.add_argument("--database", default="ts_bench_trace_list")
    return p.parse_args()


def ensure_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered), p95


def main() -> None:
    args = parse_args()
    ensure_database(args.server, args.database)
    os.environ["DATABASE_URL"] = f"{args.server}/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracescore.settings")
    os.environ["DEBUG"] = "false"  # time what production runs
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from observability.models import Trace
    from observability.records import SpanRecord
    from observability.services import ingest_spans

    call_command("migrate", verbosity=0)
    have = Trace.objects.count()
    if have < args.traces:
        print(f"seeding {args.traces - have:,} traces (this takes minutes)…", flush=True)
        started = time.perf_counter()
        call_command("seed_demo", traces=args.traces - have, seed=have + 1)
        print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)

    big_id = "b" * 32
    if not Trace.objects.filter(trace_id=big_id).exists():
        start = timezone.now() - timedelta(days=3)
        ms = timedelta(milliseconds=1)
        root = SpanRecord(
            trace_id=big_id,
            span_id="b" * 16,
            name="big-agent",
            span_type="agent_run",
            status="ok",
            started_at=start,
            ended_at=start + 20_000 * ms,
            input="q",
            output="a",
        )
        children = [
            SpanRecord(
                trace_id=big_id,
                span_id=f"{i + 1:016x}",
                parent_span_id="b" * 16,
                name=f"step {i}",
                span_type="tool_call" if i % 2 else "llm_generation",
                status="ok",
                started_at=start + i * 100 * ms,
                ended_at=start + (i * 100 + 90) * ms,
                input={"step": i},
                output={"ok": True, "text": "x" * 200},
            )
            for i in range(199)
        ]
        ingest_spans([root, *children])

    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = Client()
    client.force_login(user)
    total = Trace.objects.count()
    spans = Trace.objects.filter(trace_id=big_id).values_list("span_count", flat=True).first()
    print(f"{total:,} traces in {args.database}; big trace has {spans} spans", flush=True)

    def deep_cursor(url: str, pages: int) -> str:
        """Follow the cursor ``pages`` pages deep and return that page's URL."""
        current = url
        for _ in range(pages):
            response = (
                client.get(current, HTTP_HX_REQUEST="true")
                if "/api/" not in current
                else client.get(current)
            )
            if "/api/" in current:
                nxt = response.json().get("next")
                current = nxt.replace("http://testserver", "") if nxt else current
            else:
                html = response.content.decode()
                token = html.split("cursor=", 1)[1].split('"', 1)[0].split("&", 1)[0]
                current = f"/traces/?cursor={token}"
        return current

    cases = {
        "list first page": "/traces/",
        "list filtered (name=support, status=error)": "/traces/?name=support&status=error",
        "list 200 pages deep": deep_cursor("/traces/", 200),
        "list htmx table only": "/traces/",
        "api first page": "/api/traces",
        "api filtered (name=support, status=error)": "/api/traces?name=support&status=error",
        "api 200 pages deep": deep_cursor("/api/traces", 200),
        "detail 200-span trace": f"/traces/{big_id}/",
    }
    print(f"\n{'page':45} {'p50 ms':>8} {'p95 ms':>8}")
    for label, url in cases.items():
        headers = {"HTTP_HX_REQUEST": "true"} if "htmx" in label else {}
        for _ in range(5):
            client.get(url, **headers)
        samples = []
        for _ in range(args.runs):
            began = time.perf_counter()
            response = client.get(url, **headers)
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            # The htmx row must time the table partial, not the whole page.
            assert ("<html" in response.content.decode()) != bool(headers), label
        p50, p95 = percentiles(samples)
        print(f"{label:45} {p50:8.1f} {p95:8.1f}", flush=True)


if __name__ == "__main__":
    main()
