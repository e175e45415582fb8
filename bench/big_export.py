"""Huge-export benchmark: what one enormous OTLP export costs a gunicorn worker.

Not a test. It creates a scratch PostgreSQL database, migrates it, creates an
ingest key and starts gunicorn (one sync worker) on it, then sends, one at a
time, exports of tiny spans (ids, a name, start and end, 1,000 spans per
trace) and prints, for each, the answer, the time to it, and the worker's peak
memory while handling it (``VmHWM``, reset before each export through
``/proc/<pid>/clear_refs``) above what it held before:

- 600,000 bare spans (ids, a name and a start) as gzip protobuf (about 1.8 MB;
  25 MB inflated, under the 32 MiB limit): refused;
- as many as fit in the 32 MiB inflated limit as gzip OTLP/JSON: refused;
- exports at the cap (``--cap``, default 50,000 spans), protobuf and JSON:
  stored, every span checked;
- with ``--uncapped``, the 600,000-span export again with the cap lifted (a
  second server), to show what the cap saves: this takes a minute or more.

    .venv/bin/python bench/big_export.py
    .venv/bin/python bench/big_export.py --cap 20000 --uncapped
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PYTHON = sys.executable
START_NS = 1_790_000_000_000_000_000
SPANS_PER_TRACE = 1_000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spans", type=int, default=600_000, help="spans in the huge export")
    p.add_argument("--cap", type=int, default=50_000, help="TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT")
    p.add_argument("--uncapped", action="store_true", help="also send the huge export uncapped")
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_spans(count: int, first: int = 0):
    """(trace id, span id, parent id or None, nanosecond start) of ``count`` tiny spans."""
    for n in range(first, first + count):
        trace, at = divmod(n, SPANS_PER_TRACE)
        root = trace * SPANS_PER_TRACE
        yield (
            f"{trace + 1:032x}",
            f"{n + 1:016x}",
            None if at == 0 else f"{root + 1:016x}",
            START_NS + n * 1_000,
        )


def protobuf_export(count: int, first: int = 0, *, bare: bool = False) -> bytes:
    """An export of tiny spans; ``bare`` ones have only ids, a name and a start (≈43 bytes)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for trace_id, span_id, parent, start in tiny_spans(count, first):
        span = scope.spans.add()
        span.trace_id = bytes.fromhex(trace_id)
        span.span_id = bytes.fromhex(span_id)
        span.name = "s"
        span.start_time_unix_nano = start
        if not bare:
            if parent:
                span.parent_span_id = bytes.fromhex(parent)
            span.end_time_unix_nano = start + 500
    return request.SerializeToString()


def json_export(count: int, first: int = 0) -> bytes:
    spans = []
    for trace_id, span_id, parent, start in tiny_spans(count, first):
        span = {"traceId": trace_id, "spanId": span_id, "name": "s"}
        if parent:
            span["parentSpanId"] = parent
        span["startTimeUnixNano"] = str(start)
        span["endTimeUnixNano"] = str(start + 500)
        spans.append(span)
    document = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    return json.dumps(document, separators=(",", ":")).encode()


def json_spans_fitting(limit: int) -> int:
    """How many tiny spans fit in an OTLP/JSON export of at most ``limit`` bytes."""
    per_span = (len(json_export(2_000)) - len(json_export(0))) / 2_000
    count = int((limit - len(json_export(0))) / per_span)
    while len(json_export(count)) > limit:
        count -= 1_000
    return count


class Server:
    """gunicorn with one sync worker on the scratch database."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                str(Path(PYTHON).parent / "gunicorn"),
                "tracescore.wsgi",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "300",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def worker(self) -> int:
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def send(server: Server, secret: str, body: bytes, content_type: str) -> dict:
    """POST one gzip export; the answer, its time and the worker's peak memory above its start."""
    worker = server.worker()
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    before = memory_kb(worker, "VmRSS")
    request = urllib.request.Request(
        server.url("/v1/traces"),
        data=body,
        headers={
            "Content-Type": content_type,
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {secret}",
        },
    )
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    seconds = time.perf_counter() - began
    peak = memory_kb(worker, "VmHWM")
    message = ""
    if status != 200:
        from google.protobuf.message import DecodeError
        from google.rpc.status_pb2 import Status

        try:
            if content_type == "application/json":
                message = json.loads(answer)["error"]
            else:
                message = Status.FromString(answer).message
        except (ValueError, KeyError, DecodeError):  # not an OTLP answer: a server error page
            message = f"(not an OTLP error body: {answer[:80]!r})"
    return {"status": status, "seconds": seconds, "peak_mb": (peak - before) / 1024, "msg": message}


def stored_spans(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM observability_span").fetchone()[0]


def main() -> int:
    args = parse_args()
    scratch = f"ts_bench_big_export_{os.getpid()}"
    scratch_url = args.database_url.rsplit("/", 1)[0] + "/" + scratch
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    env = {
        **os.environ,
        "DATABASE_URL": scratch_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT": str(args.cap),
    }
    servers: list[Server] = []
    try:
        manage = [PYTHON, str(REPO / "manage.py")]
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True)
        secret = (
            subprocess.run(
                [*manage, "create_ingest_key", "bench"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        limit = 32 * 1024 * 1024
        print("building the exports…", flush=True)
        huge = protobuf_export(args.spans, bare=True)
        huge_gz = gzip.compress(huge)
        fitting = json_spans_fitting(limit)
        huge_json = json_export(fitting)
        huge_json_gz = gzip.compress(huge_json)
        cases = [
            (
                f"{args.spans:,} spans, protobuf ({len(huge_gz) / 1e6:.1f} MB gzip, "
                f"{len(huge) / 1e6:.1f} MB inflated)",
                huge_gz,
                "application/x-protobuf",
                413,
            ),
            (
                f"{fitting:,} spans, JSON ({len(huge_json_gz) / 1e6:.1f} MB gzip, "
                f"{len(huge_json) / 1e6:.1f} MB inflated)",
                huge_json_gz,
                "application/json",
                413,
            ),
            (
                f"{args.cap:,} spans (the cap), protobuf",
                gzip.compress(protobuf_export(args.cap, first=args.spans), 6),
                "application/x-protobuf",
                200,
            ),
            (
                f"{args.cap:,} spans (the cap), JSON",
                gzip.compress(json_export(args.cap, first=args.spans + args.cap), 6),
                "application/json",
                200,
            ),
        ]
        del huge, huge_json
        servers.append(Server(env))
        # Warm up: the first request imports the views and connects to the database.
        send(servers[0], secret, gzip.compress(protobuf_export(1, first=10**8)), cases[2][2])
        print(f"\ncap {args.cap:,} spans per export, gunicorn 1 sync worker, database {scratch}")
        print(f"{'export':62} {'answer':>6} {'time s':>7} {'peak MB':>8}")
        failures = 0
        for label, body, content_type, expected in cases:
            result = send(servers[0], secret, body, content_type)
            failures += result["status"] != expected
            print(
                f"{label:62} {result['status']:>6} {result['seconds']:7.2f} "
                f"{result['peak_mb']:8.0f}",
                flush=True,
            )
            if result["msg"]:
                print(f"    {result['msg']}")
        expected_rows = 2 * args.cap + 1
        stored = stored_spans(scratch_url)
        print(f"stored: {stored:,} spans (expected {expected_rows:,})")
        failures += stored != expected_rows
        if args.uncapped:
            servers.append(Server({**env, "TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT": str(10**9)}))
            send(
                servers[1], secret, gzip.compress(protobuf_export(1, first=10**8 + 1)), cases[2][2]
            )
            result = send(servers[1], secret, huge_gz, "application/x-protobuf")
            print(
                f"{'the same ' + format(args.spans, ',') + ' spans, cap lifted':62} "
                f"{result['status']:>6} {result['seconds']:7.2f} {result['peak_mb']:8.0f}"
            )
        return 1 if failures else 0
    finally:
        for server in servers:
            server.stop()
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
