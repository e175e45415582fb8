"""Ingest benchmark: OTLP protobuf agent traces into tracescore on PostgreSQL.

Not a test. It creates a scratch PostgreSQL database, migrates it, creates an
ingest key, starts the production web server on it (``tracescore.server``:
gunicorn with uvicorn workers, as in the README), sends agent traces with the
shared load generator (``../shared/tools/otlp_load.py``, several concurrent
senders) and prints spans/s from the first request to the last span stored. In
the same run it decodes the very same export bodies on one core (decode rate),
and decodes them again and ``COPY``s the rows, on one connection, into a scratch
copy of the span table with the same indexes and unique constraint: a
single-connection reference for what one writer can do.

    .venv/bin/python bench/ingest.py                       # 2,000 traces, 3 workers
    .venv/bin/python bench/ingest.py --traces 4000 --workers 4 --concurrency 6

PostgreSQL is reached with --database-url (default: the server on 127.0.0.1 as
postgres); the scratch database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tracescore.server import WORKER_CLASS, gunicorn_command  # noqa: E402  (after the path is set)

DEFAULT_LOAD_TOOL = REPO.parent / "shared" / "tools" / "otlp_load.py"
PYTHON = sys.executable


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--traces", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=4, help="parallel senders")
    p.add_argument("--spans-per-request", type=int, default=100)
    p.add_argument("--workers", type=int, default=3, help="web server processes")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--load-tool", type=Path, default=DEFAULT_LOAD_TOOL)
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_dbname(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def load_tool_module(path: Path):
    spec = importlib.util.spec_from_file_location("otlp_load", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer at {url}")


def decode_rate(bodies: list[tuple[int, bytes]]) -> tuple[float, int]:
    """Decode and map the bodies on one core: (spans/s, spans)."""
    from observability.otlp import PROTOBUF, decode_export

    t0 = time.perf_counter()
    spans = sum(len(decode_export(body, PROTOBUF).spans) for _, body in bodies)
    return spans / (time.perf_counter() - t0), spans


def copy_reference(bodies: list[tuple[int, bytes]], database_url: str) -> tuple[float, float, int]:
    """Decode the same bodies and COPY the rows, on one connection, into a copy of the span table.

    The copy has the span table's indexes and unique constraint (``LIKE …
    INCLUDING ALL``), not its foreign key. Returns (decode+COPY spans/s,
    COPY-only spans/s, rows).
    """
    from observability.otlp import PROTOBUF, decode_export

    columns = (
        "trace_id, span_id, parent_span_id, name, span_type, status, error_message, started_at, "
        "ended_at, duration_ms, input, output, attributes, resource, events, model, "
        "input_tokens, output_tokens, received_at"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_spans")
        conn.execute("CREATE TABLE bench_copy_spans (LIKE observability_span INCLUDING ALL)")
        t0 = time.perf_counter()
        rows = []
        for _, body in bodies:
            for r in decode_export(body, PROTOBUF).spans:
                rows.append(
                    (
                        r.trace_id,
                        r.span_id,
                        r.parent_span_id,
                        r.name,
                        r.span_type,
                        r.status,
                        r.error_message,
                        r.started_at,
                        r.ended_at,
                        r.duration_ms,
                        json.dumps(r.input),
                        json.dumps(r.output),
                        json.dumps(r.attributes),
                        json.dumps(r.resource),
                        json.dumps(r.events),
                        r.model,
                        r.input_tokens,
                        r.output_tokens,
                        r.started_at,
                    )
                )
        t1 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY bench_copy_spans ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        t2 = time.perf_counter()
        conn.execute("DROP TABLE bench_copy_spans")
    return len(rows) / (t2 - t0), len(rows) / (t2 - t1), len(rows)


def main() -> int:
    args = parse_args()
    if not args.load_tool.exists():
        raise SystemExit(f"load generator not found: {args.load_tool} (see --load-tool)")
    scratch = f"ts_bench_ingest_{os.getpid()}"
    scratch_url = with_dbname(args.database_url, scratch)
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    env = {
        **os.environ,
        "DATABASE_URL": scratch_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore::UserWarning",
    }
    server = None
    try:
        manage = [PYTHON, str(REPO / "manage.py")]
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True)
        key_output = subprocess.run(
            [*manage, "create_ingest_key", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        secret = key_output.strip().splitlines()[-1]

        port = free_port()
        server = subprocess.Popen(
            [
                *gunicorn_command(
                    f"127.0.0.1:{port}", workers=args.workers, bin_dir=Path(PYTHON).parent
                ),
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
        )
        wait_until_up(f"http://127.0.0.1:{port}/healthz")

        base_time = time.time()
        load_args = [
            "--endpoint",
            f"http://127.0.0.1:{port}/v1/traces",
            "--traces",
            str(args.traces),
            "--concurrency",
            str(args.concurrency),
            "--spans-per-request",
            str(args.spans_per_request),
            "--seed",
            str(args.seed),
            "--base-time",
            str(base_time),
            "--header",
            f"Authorization: Bearer {secret}",
            "--summary-json",
        ]
        print(
            f"sending {args.traces} traces, {args.concurrency} senders, "
            f"{args.workers} web server processes ({WORKER_CLASS}), PostgreSQL database {scratch}",
            flush=True,
        )
        load = subprocess.run(
            [PYTHON, str(args.load_tool), *load_args], capture_output=True, text=True
        )
        sys.stderr.write(load.stderr)
        summary = json.loads(load.stdout.strip().splitlines()[-1])
        with psycopg.connect(scratch_url) as conn:
            stored = conn.execute("SELECT count(*) FROM observability_span").fetchone()[0]
            traces = conn.execute(
                "SELECT count(*) FROM observability_trace WHERE has_root AND span_count > 1"
            ).fetchone()[0]
            wrong = conn.execute(
                "SELECT count(*) FROM observability_trace t WHERE span_count <> "
                "(SELECT count(*) FROM observability_span s WHERE s.trace_id = t.trace_id)"
            ).fetchone()[0]
        # Every export is stored before its answer is sent, so the last answer
        # marks the last span stored.
        ingest_rate = stored / summary["elapsed_s"]

        tool = load_tool_module(args.load_tool)
        bodies, _ = tool.build_requests(tool.parse_args(load_args))
        decoded_rate, decoded = decode_rate(bodies)
        reference, copy_only, rows = copy_reference(bodies, scratch_url)

        print(
            f"payload:         {summary['spans_total']} spans in {summary['requests']} requests "
            f"({summary['payload_mb']} MB), http errors {summary['http_errors']}, "
            f"rejected {summary['rejected_spans']}"
        )
        print(
            f"stored:          {stored} spans, {traces} complete traces, "
            f"{wrong} trace summaries disagreeing with their spans"
        )
        print(
            f"ingest, end to end:          {ingest_rate:,.0f} spans/s "
            f"({summary['elapsed_s']} s, {args.concurrency} senders)"
        )
        print(f"decode + map, one core:      {decoded_rate:,.0f} spans/s ({decoded} spans)")
        print(
            f"decode + COPY, one conn.:    {reference:,.0f} spans/s "
            f"(into a copy of the span table with its indexes, {rows} rows)"
        )
        print(f"COPY only, one connection:   {copy_only:,.0f} spans/s")
        print(f"ingest / one-connection decode + COPY: {ingest_rate / reference:.0%}")
        return 0 if stored == summary["spans_total"] and not wrong else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
