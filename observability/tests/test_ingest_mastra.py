"""A real Mastra agent, exporting with Mastra's own exporters, into the production server.

``tests/node/mastra/agent.mjs`` runs a Mastra agent with one tool on Node 22
(from the npm registry's ``node-linux-*`` package) against the loopback
OpenAI-compatible server of ``tests/fake_openai.py``, and exports its traces to
gunicorn exactly as a Mastra user configures ``@mastra/otel-exporter`` (or
``@mastra/arize``). What a user would then see is asserted through the API, the
trace page and the scorers.

The npm packages come from ``tests/node/mastra/package-lock.json`` (``make
test`` installs them). Without them the tests are skipped, or fail under CI.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from observability.models import Trace
from observability.services import create_ingest_key
from scoring.inputs import build_scoring_input
from tests.fake_openai import FakeOpenAI, Reply, ToolCall
from tests.worker import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

MASTRA = ROOT / "tests" / "node" / "mastra"
QUESTION = "What is the weather in Paris?"
ANSWER = "It is sunny, 21 C in Paris."
INSTRUCTIONS = "You are a weather assistant. Use the weather tool, then answer in one sentence."
# The spans of one run: agent, model loop, two steps (tool call, answer), each
# with its provider call and streamed chunks, and the tool call.
MASTRA_TYPES = Counter(
    agent_run=1, model_generation=1, model_step=2, model_inference=2, model_chunk=3, tool_call=1
)
SPAN_TYPES = Counter(agent_run=1, llm_generation=3, workflow_step=2, generic=3, tool_call=1)


def node_binary() -> Path:
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine()
    )
    node = MASTRA / "node_modules" / f"node-linux-{arch}" / "bin" / "node"
    installed = (MASTRA / "node_modules" / "@mastra" / "otel-exporter").is_dir()
    if node.is_file() and installed:
        return node
    message = (
        "The Mastra test packages are not installed: run "
        "`npm ci --prefix tests/node/mastra` (make test does)."
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def node():
    return node_binary()


@pytest.fixture
def secret(transactional_db):
    return create_ingest_key(name="mastra")[1]


def run_agent(
    node: Path, server, secret: str, *, exporter: str, metadata: dict, stream: bool = False
) -> dict:
    """Run the agent against a fresh fake LLM: first a tool call, then the answer."""
    script = [Reply(tool_calls=[ToolCall("weather", {"city": "Paris"})]), Reply(text=ANSWER)]
    with FakeOpenAI(script) as llm:
        result = subprocess.run(
            [
                str(node),
                "agent.mjs",
                f"--endpoint={server.url}/v1/traces",
                f"--key={secret}",
                f"--llm-url={llm.base_url}",
                f"--exporter={exporter}",
                f"--question={QUESTION}",
                f"--metadata={json.dumps(metadata)}",
                "--thread=thread-1",
                "--resource=user-7",
                *(["--stream"] if stream else []),
            ],
            cwd=MASTRA,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr
        assert len(llm.requests) == 2, llm.requests
        assert all(r.body.get("stream", False) == stream for r in llm.requests)
    run = json.loads(result.stdout.strip().splitlines()[-1])
    assert run["text"] == ANSWER
    wait_for_trace(run["traceId"], spans=sum(MASTRA_TYPES.values()), server=server)
    return run


def wait_for_trace(trace_id: str, *, spans: int, server, seconds: float = 20) -> None:
    """The exporter has flushed before the script exits; allow for the last request."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        trace = Trace.objects.filter(trace_id=trace_id).first()
        if trace and trace.has_root and trace.span_count >= spans:
            return
        time.sleep(0.2)
    raise AssertionError(f"Trace {trace_id} was not stored whole:\n{server.log()[-3000:]}")


def by_type(spans: list[dict]) -> Counter:
    return Counter(s["spanType"] for s in spans)


def test_a_mastra_agents_trace_shows_question_answer_types_tokens_and_metadata(
    node, gunicorn_server, secret, api_client, alice_client
):
    metadata = {"expected_tools": ["weather"], "userId": "user-7"}
    run = run_agent(node, gunicorn_server, secret, exporter="otel", metadata=metadata)

    trace = api_client.get(f"/api/traces/{run['traceId']}").json()
    spans = trace["spans"]
    root = next(s for s in spans if s["spanId"] == trace["rootSpanId"])
    assert (trace["spanType"], trace["serviceName"]) == ("agent_run", "weather-service")
    assert root["input"] == QUESTION
    assert root["output"]["text"] == ANSWER
    assert Counter(s["attributes"]["mastra.span.type"] for s in spans) == MASTRA_TYPES
    assert by_type(spans) == SPAN_TYPES

    # Two model calls of 25 + 9 tokens (the fake server's usage), each counted once.
    calls = [s for s in spans if s["attributes"]["mastra.span.type"] == "model_inference"]
    assert [(c["model"], c["inputTokens"], c["outputTokens"]) for c in calls] == [
        ("gpt-4o-mini", 25, 9),
        ("gpt-4o-mini", 25, 9),
    ]
    assert (trace["inputTokens"], trace["outputTokens"]) == (50, 18)

    (tool,) = [s for s in spans if s["spanType"] == "tool_call"]
    assert (tool["input"], tool["output"]) == (
        {"city": "Paris"},
        {"forecast": "Sunny, 21 C in Paris"},
    )
    assert root["attributes"]["mastra.metadata.expected_tools"] == '["weather"]'
    assert root["attributes"]["mastra.metadata.threadId"] == "thread-1"

    page = alice_client.get(Trace.objects.get(trace_id=run["traceId"]).get_absolute_url())
    assert page.status_code == 200
    assert QUESTION in page.content.decode() and ANSWER in page.content.decode()


def test_scorers_read_a_mastra_trace_and_honour_expected_tools_from_its_metadata(
    node, gunicorn_server, secret, api_client, sync_tasks
):
    metadata = {"expected_tools": ["weather", "air-quality"]}
    run = run_agent(node, gunicorn_server, secret, exporter="otel", metadata=metadata)
    trace_id = run["traceId"]

    data = build_scoring_input(trace_id)
    assert (data.question, data.output_text) == (QUESTION, ANSWER)
    assert data.system_prompt == INSTRUCTIONS
    assert data.metadata["expected_tools"] == ["weather", "air-quality"]
    assert (data.metadata["threadId"], data.metadata["resourceId"]) == ("thread-1", "user-7")

    scores = {}
    for scorer_id in ("completeness", "tool-call-accuracy"):
        with sync_tasks(execute=True):
            response = api_client.post(
                "/api/trace-scorers/batch",
                {"scorerId": scorer_id, "traceIds": [trace_id], "scopeType": "trace"},
                format="json",
            )
        assert response.status_code == 202, response.content
    for score in api_client.get(f"/api/traces/{trace_id}/scores").json()["results"]:
        scores[score["scorerId"]] = score

    assert scores["completeness"]["status"] == "succeeded", scores["completeness"]
    assert scores["completeness"]["score"] > 0
    accuracy = scores["tool-call-accuracy"]
    assert accuracy["status"] == "succeeded", accuracy
    # One of the two expected tools was called: without the metadata it would be 1.0.
    assert accuracy["score"] == 0.5
    assert "not called: air-quality" in accuracy["reason"]


def test_mastras_arize_exporter_gives_the_same_types_and_totals(
    node, gunicorn_server, secret, api_client
):
    metadata = {"expected_tools": ["weather"]}
    run = run_agent(node, gunicorn_server, secret, exporter="arize", metadata=metadata)

    trace = api_client.get(f"/api/traces/{run['traceId']}").json()
    spans = trace["spans"]
    root = next(s for s in spans if s["spanId"] == trace["rootSpanId"])
    assert "openinference.span.kind" in root["attributes"]
    assert (root["input"], root["output"]["text"]) == (QUESTION, ANSWER)
    assert Counter(s["attributes"]["mastra.span.type"] for s in spans) == MASTRA_TYPES
    assert by_type(spans) == SPAN_TYPES
    assert (trace["inputTokens"], trace["outputTokens"]) == (50, 18)

    data = build_scoring_input(run["traceId"])
    assert data.metadata["expected_tools"] == ["weather"]
    assert (data.metadata["threadId"], data.metadata["resourceId"]) == ("thread-1", "user-7")
    assert data.system_prompt == INSTRUCTIONS


def test_a_streamed_mastra_agent_run_shows_the_question_answer_and_types(
    node, gunicorn_server, secret, api_client
):
    run = run_agent(
        node,
        gunicorn_server,
        secret,
        exporter="otel",
        metadata={"expected_tools": ["weather"]},
        stream=True,
    )

    trace = api_client.get(f"/api/traces/{run['traceId']}").json()
    spans = trace["spans"]
    root = next(s for s in spans if s["spanId"] == trace["rootSpanId"])
    assert (root["input"], root["output"]["text"]) == (QUESTION, ANSWER)
    assert by_type(spans) == SPAN_TYPES
    (tool,) = [s for s in spans if s["spanType"] == "tool_call"]
    assert tool["input"] == {"city": "Paris"}
    # Mastra's model router does not ask an OpenAI-compatible server for usage
    # when it streams, so these calls carry no tokens, and none are made up.
    assert (trace["inputTokens"], trace["outputTokens"]) == (0, 0)
