"""A loopback OpenAI-compatible LLM server for tests that drive real clients.

It serves ``POST /v1/chat/completions`` and ``POST /v1/responses``, plain and
streaming, in OpenAI's wire format: chat streams are ``data: {chunk}`` lines
ending with ``data: [DONE]``; Responses streams are typed ``event:`` / ``data:``
pairs from ``response.created`` to ``response.completed``. Streams go out with
``Transfer-Encoding: chunked``, as OpenAI's do.

Answers come from a script, one ``Reply`` per request, in order (both endpoints
share the script), so an agent loop can be played out: first a tool call, then
the final text once the tool result comes back::

    with FakeOpenAI([
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    ]) as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="test")
        ...
        assert llm.requests[1].body["messages"][-1]["role"] == "tool"

When the script runs out, ``default`` answers. Every request is kept in
``requests`` (path, headers, parsed JSON body) for assertions; ``GET
/_fake/requests`` answers the same list as JSON, for clients in other processes.

Load: ``latency`` delays every answer whose ``Reply`` sets no ``delay`` of its
own. ``stats()`` (and ``GET /_fake/stats``) counts the requests, the ones in
flight now and the most ever in flight at once (``peak_in_flight``), and the
ones answered 429. ``storm(fraction, seconds)`` answers that fraction of the
requests (drawn from a seeded random generator) with 429 and a
``retry-after-ms`` / ``retry-after`` header for that many seconds, as a rate
limited provider does.

Run it alone for a client in another language (Node): ``python
tests/fake_openai.py 'first answer' 'second answer'`` prints the base URL on
stdout and serves until stdin closes or it gets SIGTERM; a reply given as JSON
(``'{"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}'``) is read as a
``Reply``.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ToolCall:
    """A function call the model asks for; ``arguments`` as a dict or JSON text."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str = ""  # filled in as call_<n> when empty

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Reply:
    """One scripted answer: text, tool calls, or an HTTP error status."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 25
    output_tokens: int = 9
    status: int = 200
    delay: float = 0.0
    retry_after_ms: str = "10"  # sent with an error status

    @classmethod
    def parse(cls, value: str) -> Reply:
        """A reply from the command line: JSON object fields, or plain answer text."""
        try:
            data = json.loads(value)
        except ValueError:
            return cls(text=value)
        if not isinstance(data, dict):
            return cls(text=value)
        calls = [ToolCall(**call) for call in data.pop("tool_calls", [])]
        return cls(tool_calls=calls, **data)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connecting at once (load benches)
    daemon_threads = True


@dataclass
class FakeOpenAI:
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: Reply(text="OK"))
    requests: list[Received] = field(default_factory=list)
    latency: float = 0.0  # seconds, for every reply without a delay of its own

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.throttled = 0
        self._storm: tuple[float, float, str, random.Random] | None = None

    def stats(self) -> dict[str, int]:
        """Requests so far, in flight now, the most in flight at once, answered 429."""
        with self._lock:
            return {
                "requests": len(self.requests),
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "throttled": self.throttled,
            }

    def reset_stats(self) -> None:
        with self._lock:
            self.peak_in_flight = self.in_flight
            self.throttled = 0

    def storm(
        self, fraction: float, seconds: float, retry_after_ms: int = 1000, seed: int = 0
    ) -> None:
        """Answer ``fraction`` of the requests of the next ``seconds`` with 429."""
        until = time.monotonic() + seconds
        self._storm = (until, fraction, str(retry_after_ms), random.Random(seed))

    def _throttle(self) -> str | None:
        """The retry-after-ms of a 429 for this request, or None to answer it."""
        with self._lock:
            if self._storm is None:
                return None
            until, fraction, retry_after_ms, rng = self._storm
            if time.monotonic() >= until:
                self._storm = None
                return None
            if rng.random() >= fraction:
                return None
            self.throttled += 1
            return retry_after_ms

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_{next(self._ids):04d}"

    def _next_reply(self) -> Reply:
        with self._lock:
            reply = self.replies.pop(0) if self.replies else self.default
        for call in reply.tool_calls:
            if not call.id:
                call.id = self.next_id("call")
        return reply

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm
            # and the client's delayed ACK add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.split("?", 1)[0] == "/_fake/stats":
                    self._send(200, json.dumps(fake.stats()).encode())
                    return
                if self.path.split("?", 1)[0] != "/_fake/requests":
                    self._send_error(404, f"Invalid URL (GET {self.path})")
                    return
                received = [vars(request) for request in fake.requests]
                self._send(200, json.dumps(received).encode())

            def do_POST(self):  # noqa: N802 - http.server's name
                fake._enter()
                try:
                    self._post()
                finally:
                    fake._leave()

            def _post(self):
                body = self._read_body()
                try:
                    request = json.loads(body or b"{}")
                except ValueError:
                    self._send_error(400, "We could not parse the JSON body of your request.")
                    return
                path = self.path.split("?", 1)[0]
                fake.requests.append(
                    Received(path, {k.lower(): v for k, v in self.headers.items()}, request)
                )
                if path.endswith("/chat/completions"):
                    answer = _chat_stream if request.get("stream") else _chat
                elif path.endswith("/responses"):
                    answer = _responses_stream if request.get("stream") else _responses
                else:
                    self._send_error(404, f"Invalid URL (POST {path})")
                    return
                retry_after_ms = fake._throttle()
                if retry_after_ms is not None:
                    if fake.latency:
                        time.sleep(fake.latency / 10)  # a refusal comes back quickly
                    self._send_error(
                        429, "Rate limit reached; try again later.", retry_after_ms, storm=True
                    )
                    return
                reply = fake._next_reply()
                if reply.delay or fake.latency:
                    time.sleep(reply.delay or fake.latency)
                if reply.status != 200:
                    self._send_error(reply.status, f"status {reply.status}", reply.retry_after_ms)
                    return
                result = answer(fake, request, reply)
                if isinstance(result, dict):
                    self._send(200, json.dumps(result).encode())
                else:
                    self._send_stream(result)

            def _read_body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send_error(
                self, status: int, message: str, retry_after_ms: str = "10", storm: bool = False
            ) -> None:
                error = {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
                headers = {"retry-after-ms": retry_after_ms}
                if storm:
                    headers["retry-after"] = str(math.ceil(float(retry_after_ms) / 1000))
                self._send(status, json.dumps({"error": error}).encode(), headers)

            def _send(
                self, status: int, data: bytes, headers: dict[str, str] | None = None
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def _send_stream(self, events) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for event in events:
                        data = event.encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base_url(self) -> str:
        """What OpenAI clients take as ``base_url`` / ``baseURL``."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


def _pieces(text: str, size: int = 3) -> list[str]:
    """Split text into stream deltas of a few words each, as a model streams."""
    words = text.split(" ")
    return [
        " ".join(words[i : i + size]) + (" " if i + size < len(words) else "")
        for i in range(0, len(words), size)
    ]


# --- chat completions -------------------------------------------------------


def _chat_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat(fake: FakeOpenAI, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if reply.text or not reply.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in reply.tool_calls
        ]
    return {
        "id": fake.next_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "gpt-test"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _chat_usage(reply),
        "service_tier": "default",
        "system_fingerprint": "fp_test",
    }


def _chat_stream(fake: FakeOpenAI, request: dict[str, Any], reply: Reply):
    include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": fake.next_id("chatcmpl"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", "gpt-test"),
        "service_tier": "default",
        "system_fingerprint": "fp_test",
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        data = {**base, "choices": [choice]}
        if include_usage:
            data["usage"] = None
        return f"data: {json.dumps(data)}\n\n"

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in _pieces(reply.text) if reply.text else []:
        yield chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        head = {"name": call.name, "arguments": ""}
        yield chunk(
            {"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": head}]}
        )
        arguments = call.arguments_json
        for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
    if include_usage:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': _chat_usage(reply)})}\n\n"
    yield "data: [DONE]\n\n"


# --- responses --------------------------------------------------------------


def _responses_output(fake: FakeOpenAI, reply: Reply) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = []
    if reply.text:
        output.append(
            {
                "id": fake.next_id("msg"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
                ],
            }
        )
    for call in reply.tool_calls:
        output.append(
            {
                "id": fake.next_id("fc"),
                "type": "function_call",
                "status": "completed",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments_json,
            }
        )
    return output


def _response(
    fake: FakeOpenAI,
    request: dict[str, Any],
    reply: Reply,
    output: list[dict[str, Any]],
    status: str = "completed",
    response_id: str = "",
) -> dict[str, Any]:
    return {
        "id": response_id or fake.next_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "completed_at": int(time.time()) if status == "completed" else None,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": request.get("model", "gpt-test"),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools", []),
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None
        if status != "completed"
        else {
            "input_tokens": reply.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": reply.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": reply.input_tokens + reply.output_tokens,
        },
        "user": None,
        "metadata": request.get("metadata") or {},
    }


def _responses(fake: FakeOpenAI, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return _response(fake, request, reply, _responses_output(fake, reply))


def _responses_stream(fake: FakeOpenAI, request: dict[str, Any], reply: Reply):
    sequence = itertools.count(0)
    response_id = fake.next_id("resp")
    output = _responses_output(fake, reply)

    def event(kind: str, **data: Any) -> str:
        payload = {"type": kind, "sequence_number": next(sequence), **data}
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n"

    started = _response(fake, request, reply, [], "in_progress", response_id)
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    for index, item in enumerate(output):
        if item["type"] == "message":
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            part = item["content"][0]
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield event("response.content_part.added", **ids, part={**part, "text": ""})
            for piece in _pieces(part["text"]):
                yield event("response.output_text.delta", **ids, delta=piece, logprobs=[])
            yield event("response.output_text.done", **ids, text=part["text"], logprobs=[])
            yield event("response.content_part.done", **ids, part=part)
        else:
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            ids = {"item_id": item["id"], "output_index": index}
            yield event("response.function_call_arguments.delta", **ids, delta=item["arguments"])
            yield event("response.function_call_arguments.done", **ids, arguments=item["arguments"])
        yield event("response.output_item.done", output_index=index, item=item)
    yield event(
        "response.completed",
        response=_response(fake, request, reply, output, response_id=response_id),
    )


if __name__ == "__main__":
    import signal
    import sys

    with FakeOpenAI([Reply.parse(arg) for arg in sys.argv[1:]]) as server:
        print(server.base_url, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sys.stdin.read()  # serve until the parent closes our stdin
