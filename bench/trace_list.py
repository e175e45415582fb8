"""Trace list and detail benchmark: server time of the pages on 100,000 traces.

Not a test. It uses a scratch PostgreSQL database (created and migrated when
missing, kept between runs), seeds it once with ``manage.py seed_demo`` (about
600,000 spans; this takes minutes the first time, and is skipped when the
database already holds the traces), adds one 200-span trace and one
100,000-span trace, then times the views in-process with Django's test
``Client`` and prints p50/p95 per page.

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


HUGE_SPANS = 100_000
HUGE_STEPS = 1_000  # children of the root; each has HUGE_SPANS / HUGE_STEPS - 1 children


def huge_span_id(n: int) -> str:
    return f"{n + 1:015x}c"


def huge_trace(trace_id: str, start):
    """Batches of SpanRecords for a 100,000-span agent run: root, 1,000 steps, 99 calls each."""
    from observability.records import SpanRecord

    ms = timedelta(milliseconds=1)
    per_step = HUGE_SPANS // HUGE_STEPS
    batch = [
        SpanRecord(
            trace_id=trace_id,
            span_id=huge_span_id(0),
            name="huge-agent",
            span_type="agent_run",
            status="ok",
            started_at=start,
            ended_at=start + HUGE_SPANS * 10 * ms,
            input="q",
            output="a",
        )
    ]
    for n in range(1, HUGE_SPANS):
        step, at = divmod(n - 1, per_step)
        is_step = at == 0
        step_start = start + step * per_step * 10 * ms
        batch.append(
            SpanRecord(
                trace_id=trace_id,
                span_id=huge_span_id(n),
                parent_span_id=huge_span_id(0 if is_step else step * per_step + 1),
                name=f"step {step}" if is_step else f"call {n}",
                span_type="workflow_step"
                if is_step
                else ("tool_call" if n % 2 else "llm_generation"),
                status="ok",
                started_at=step_start + (0 if is_step else at * 10) * ms,
                ended_at=step_start + (per_step * 10 - 1 if is_step else at * 10 + 9) * ms,
                input={"step": step, "call": n},
                output={"ok": True, "text": "x" * 200},
            )
        )
        if len(batch) == 10_000:
            yield batch
            batch = []
    if batch:
        yield batch


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

    huge_id = "c" * 32
    if not Trace.objects.filter(trace_id=huge_id).exists():
        print(f"adding a {HUGE_SPANS:,}-span trace…", flush=True)
        started = time.perf_counter()
        for batch in huge_trace(huge_id, timezone.now() - timedelta(days=2)):
            ingest_spans(batch)
        print(f"added in {time.perf_counter() - started:.0f} s", flush=True)

    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = Client()
    client.force_login(user)
    total = Trace.objects.count()
    spans = Trace.objects.filter(trace_id=big_id).values_list("span_count", flat=True).first()
    huge_spans = Trace.objects.get(trace_id=huge_id).span_count
    print(
        f"{total:,} traces in {args.database}; big trace has {spans} spans, "
        f"huge trace {huge_spans:,}",
        flush=True,
    )
    deep_span = huge_span_id(HUGE_SPANS * 3 // 4)

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
        "detail 100,000-span trace (first 500 spans)": f"/traces/{huge_id}/",
        "detail 100,000-span trace, ?span= at 75,000": f"/traces/{huge_id}/?span={deep_span}",
        "detail 100,000-span trace, htmx load more": f"/traces/{huge_id}/?offset=50000&part=spans",
        "api 100,000-span trace (first 500 spans)": f"/api/traces/{huge_id}",
        "api 100,000-span trace, offset 50,000": f"/api/traces/{huge_id}?offset=50000",
        "api 100,000-span trace, pageSize=1000": f"/api/traces/{huge_id}?pageSize=1000",
        # The first view of a huge trace in a process reads and orders its 100,000
        # ids; later pages reuse that tree until a span arrives.
        "detail 100,000-span trace, tree not kept yet": f"/traces/{huge_id}/",
        "api 100,000-span trace, tree not kept yet": f"/api/traces/{huge_id}",
    }
    from observability.spantree import _kept_tree

    print(f"\n{'page':45} {'p50 ms':>8} {'p95 ms':>8}")
    for label, url in cases.items():
        headers = {"HTTP_HX_REQUEST": "true"} if "htmx" in label else {}
        cold = "not kept" in label
        for _ in range(5):
            client.get(url, **headers)
        samples = []
        for _ in range(args.runs):
            if cold:
                _kept_tree.cache_clear()
            began = time.perf_counter()
            response = client.get(url, **headers)
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            # The htmx rows must time a partial, not the whole page (the API is JSON).
            if "/api/" not in url:
                assert ("<html" in response.content.decode()) != bool(headers), label
        p50, p95 = percentiles(samples)
        print(f"{label:45} {p50:8.1f} {p95:8.1f}", flush=True)


if __name__ == "__main__":
    main()
