"""Every code scorer over traces in the shapes exporters really store.

Each table row is one trace and the score a person should see for it, with the
reason in the row's id. The shapes are those ingest keeps after decoding:

- OpenInference: ``input.value``/``output.value`` JSON, e.g. OpenAI's request
  ``{"messages": [...], "model": ...}`` in and ``{"choices": [...]}`` out, or
  LangChain's serialised messages ``{"lc": 1, "type": "constructor", ...}``;
- OpenTelemetry GenAI: ``gen_ai.input.messages``/``gen_ai.output.messages``,
  messages with ``parts``;
- Mastra: the agent run's input as a message list (content as a string or as
  ``[{"type": "text", "text": ...}]`` parts) and its output as the answer text.
"""

from datetime import datetime, timedelta

import pytest

from scoring.inputs import scoring_input_from_spans
from scoring.scorers import ScorerError, registry
from scoring.scorers.base import SpanSummary

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT_ID = "00f067aa0ba902b7"
START = datetime(2026, 11, 20, 9, 30)


def lc(cls, content, **kwargs):
    """A LangChain message as ``langchain_core.load.dumpd`` serialises it."""
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", cls],
        "kwargs": {"content": content, "type": cls.removesuffix("Message").lower(), **kwargs},
    }


def genai(role, text):
    """One OpenTelemetry GenAI message with a text part."""
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def openai_request(question, system="You are the support agent of Northwind Outfitters."):
    return {
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        "model": "gpt-4o-mini",
        "temperature": 0,
    }


def openai_response(answer):
    return {
        "id": "chatcmpl-AVb2d8f1e0",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 52, "completion_tokens": 17, "total_tokens": 69},
    }


def mastra_user(text):
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


def tool(name, arguments, result=None, *, error="", index=0):
    """A tool span as GenAI or OpenInference instrumentation stores it."""
    return SpanSummary(
        span_id=f"{index + 1:016x}",
        parent_span_id=ROOT_ID,
        name=f"execute_tool {name}",
        span_type="tool_call",
        status="error" if error else "ok",
        error_message=error,
        started_at=START + timedelta(milliseconds=100 * (index + 1)),
        ended_at=START + timedelta(milliseconds=100 * (index + 1) + 80),
        duration_ms=80,
        input=arguments,
        output=None if error else result,
        attributes={"gen_ai.tool.name": name, "gen_ai.operation.name": "execute_tool"},
    )


def trace(input, output, *, metadata=None, tools=(), took_ms=2400, root_status="ok"):
    root = SpanSummary(
        span_id=ROOT_ID,
        parent_span_id=None,
        name="support-agent",
        span_type="agent_run",
        status=root_status,
        started_at=START,
        ended_at=START + timedelta(milliseconds=took_ms),
        duration_ms=took_ms,
        input=input,
        output=output,
        attributes={"metadata": metadata or {}},
    )
    return scoring_input_from_spans(TRACE_ID, [root, *tools])


def scored(scorer_id, data):
    return registry.get(scorer_id).score(data)


# --- completeness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "score", "reason"),
    [
        pytest.param(
            trace(
                [genai("user", "How do I return damaged boots?")],
                [genai("assistant", "Returning damaged boots is free: print the label.")],
            ),
            1.0,
            "The answer addresses 3 of 3 key terms of the question.",
            id="genai: returning counts for return and boots for boot, so every term is covered",
        ),
        pytest.param(
            trace(
                {"messages": [[lc("HumanMessage", "Where is my parcel? It is a tent.")]]},
                {"messages": [lc("HumanMessage", "Where is my parcel?"), lc("AIMessage", "Hi!")]},
            ),
            0.0,
            "The answer addresses 0 of 2 key terms of the question; missing: parcel, tent.",
            id="langchain serialised messages: lc, constructor and kwargs are not terms",
        ),
        pytest.param(
            trace(
                openai_request("Can I get a refund for order 1042 and the shipping fee?"),
                openai_response("Order 1042 is refunded in full."),
            ),
            0.5,
            "The answer addresses 2 of 4 key terms of the question; missing: shipping, fee.",
            id="openinference openai: an order number is no term, the system prompt no question",
        ),
        pytest.param(
            trace(
                mastra_user(
                    "Please cancel my Summit membership. My account email is jane.doe@example.com."
                ),
                "Your Summit membership is cancelled; we wrote to jane.doe@example.com.",
            ),
            0.6,
            "The answer addresses 3 of 5 key terms of the question; missing: account, email.",
            id="mastra: an e-mail address gives no terms such as example or com",
        ),
        pytest.param(
            trace(
                {"messages": [{"role": "user", "content": "Can I exchange my hiking boots?"}]},
                {"text": "Yes, boots can be exchanged within 30 days.", "files": []},
            ),
            2 / 3,
            "The answer addresses 2 of 3 key terms of the question; missing: hiking.",
            id="mastra agent result: the text of text, object and files is the answer",
        ),
        pytest.param(
            trace(
                mastra_user("Does the Trailblazer backpack fit a laptop?"),
                "The Trailblazr backpak has a sleeve for a 15-inch laptop.",
            ),
            0.75,
            "The answer addresses 3 of 4 key terms of the question; missing: fit.",
            id="mastra: a typo in the answer still covers the term",
        ),
    ],
)
def test_completeness_on_agent_traces(data, score, reason):
    result = scored("completeness", data)
    assert result.score == pytest.approx(score)
    assert result.reason == reason


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            trace(mastra_user("Hi"), "Bananas are yellow."),
            "The question has no key terms to check the answer against",
            id="a greeting has no key terms, so there is nothing to check and no 1.0",
        ),
        pytest.param(
            trace([genai("user", "1042?")], [genai("assistant", "Shipped.")]),
            "The question has no key terms to check the answer against",
            id="a bare order number is no key term",
        ),
        pytest.param(
            trace(
                [genai("system", "You answer questions about orders and refunds.")],
                [genai("assistant", "Orders ship in two days.")],
            ),
            "The trace has no question to check the answer against",
            id="without a user message the system prompt is not taken for the question",
        ),
        pytest.param(
            trace(mastra_user("Where is my parcel?"), {"order_id": 1042, "shipped": True}),
            "has no output text to score",
            id="an output of ids and flags has no answer text to check",
        ),
    ],
)
def test_completeness_refuses_when_there_is_nothing_to_check(data, message):
    with pytest.raises(ScorerError, match=message):
        scored("completeness", data)


# --- keyword coverage ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "score", "reason"),
    [
        pytest.param(
            trace(
                mastra_user("I want my money back"),
                "We refunded the order.",
                metadata={"keywords": ["refund", "order", "apology"]},
            ),
            1 / 3,
            "1 of 3 keywords from the trace's metadata appear in the answer; "
            "missing: refund, apology.",
            id="mastra: metadata keywords must appear word for word, refunded is not refund",
        ),
        pytest.param(
            trace(
                [genai("user", "Which tent suits winter camping?")],
                [genai("assistant", "The Arctic Dome tent is built for winter camping.")],
            ),
            0.75,
            "3 of 4 keywords from the question appear in the answer; missing: suits.",
            id="genai: the question's content words, found word for word",
        ),
        pytest.param(
            trace(
                mastra_user("Change the address of order #84901 to 12 Elm Street"),
                "Order #84901 now ships to 12 Elm Street.",
            ),
            0.6,
            "3 of 5 keywords from the question appear in the answer; missing: change, address.",
            id="mastra: numbers are not keywords",
        ),
        pytest.param(
            trace(
                {"messages": [[lc("HumanMessage", "Where is my parcel?")]]},
                {"generations": [[{"text": "Hello.", "message": lc("AIMessage", "Hello.")}]]},
            ),
            0.0,
            "0 of 1 keywords from the question appear in the answer; missing: parcel.",
            id="langchain generations: the JSON keys of the answer are not its words",
        ),
    ],
)
def test_keyword_coverage_on_agent_traces(data, score, reason):
    result = scored("keyword-coverage", data)
    assert result.score == pytest.approx(score)
    assert result.reason == reason


def test_keyword_coverage_without_keywords_is_refused_not_a_perfect_score():
    with pytest.raises(ScorerError, match="There are no keywords to look for"):
        scored("keyword-coverage", trace(mastra_user("Hello, thanks!"), "Bananas."))


# --- content similarity ----------------------------------------------------------------------

EXPECTED = {"expected_output": "Your order 1042 shipped yesterday and arrives Friday."}


@pytest.mark.parametrize(
    ("data", "score"),
    [
        pytest.param(
            trace(mastra_user("Where is order 1042?"), "1042", metadata=EXPECTED),
            0.14,
            id="mastra: a one-word answer found inside the expected output scores low",
        ),
        pytest.param(
            trace(
                mastra_user("Where is order 1042?"),
                "Friday arrives and yesterday shipped 1042 order your",
                metadata=EXPECTED,
            ),
            1.0,
            id="the same words in another order are the same content",
        ),
        pytest.param(
            trace(
                [genai("user", "Where is order 1042?")],
                [genai("assistant", "Order 1042 shipped yesterday; it arrives on Friday.")],
                metadata=EXPECTED,
            ),
            0.85,
            id="genai: a close paraphrase scores high",
        ),
        pytest.param(
            trace(
                openai_request("Where is order 1042?"),
                openai_response("Your order shipped."),
                metadata=EXPECTED,
            ),
            0.51,
            id="openinference openai: half the expected words score about half",
        ),
        pytest.param(
            trace(
                {"messages": [lc("HumanMessage", "Where is my order 1042?")]},
                {"messages": [lc("AIMessage", "Bananas are yellow.")]},
            ),
            0.30,
            id="langchain serialised messages: shared lc and kwargs keys do not make them similar",
        ),
    ],
)
def test_content_similarity_on_agent_traces(data, score):
    result = scored("content-similarity", data)
    assert result.score == pytest.approx(score, abs=0.01)
    assert result.reason.startswith(f"The answer's wording is {score:.0%} similar to")


# --- textual difference ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "score", "reason"),
    [
        pytest.param(
            trace(
                [genai("user", "When does order 1042 ship?")],
                [genai("assistant", "Order 1042 ships Friday.")],
                metadata={"expected_output": "Order 1042 ships Monday."},
            ),
            0.875,
            "3 character edits separate the answer from the expected output (88% similar).",
            id="genai: one word differs by three letters",
        ),
        pytest.param(
            trace(
                {"messages": [lc("HumanMessage", "When does order 1042 ship?")]},
                {"messages": [lc("AIMessage", "Order 1042 ships Monday.")]},
                metadata={"expected_output": "Order 1042 ships Monday."},
            ),
            1.0,
            "0 character edits separate the answer from the expected output (100% similar).",
            id="langchain serialised messages: the answer text is compared, not its JSON",
        ),
    ],
)
def test_textual_difference_on_agent_traces(data, score, reason):
    result = scored("textual-difference", data)
    assert result.score == pytest.approx(score, abs=0.001)
    assert result.reason == reason


# --- tone consistency ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "consistent"),
    [
        pytest.param(
            trace(openai_request("Where is my order?"), openai_response("It arrives on Friday.")),
            True,
            id="openinference openai: a neutral question and a neutral answer",
        ),
        pytest.param(
            trace(
                mastra_user("Thanks, I love this shop!"),
                "This is terrible, awful and stupid.",
            ),
            False,
            id="mastra: a happy customer gets a hostile answer",
        ),
        pytest.param(
            trace(
                [genai("system", "Be kind.")],
                [genai("assistant", "I love helping you. This is terrible and awful.")],
            ),
            False,
            id="genai: without a user message the answer's own sentences must agree in tone",
        ),
    ],
)
def test_tone_consistency_on_agent_traces(data, consistent):
    result = scored("tone-consistency", data)
    assert (result.score >= 0.75) is consistent
    assert ("consistent tone" in result.reason) is (consistent and bool(data.question))


# --- JSON validity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "score", "reason"),
    [
        pytest.param(
            [genai("assistant", "{broken")],
            0.0,
            "The output is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1).",
            id="genai: the answer message's text is judged, not the message list around it",
        ),
        pytest.param(
            [genai("assistant", '{"order_id": "1042", "status": "shipped"}')],
            1.0,
            "The output is a valid JSON document (an object).",
            id="genai: an answer message holding a JSON object",
        ),
        pytest.param(
            openai_response("[1042, 77]"),
            1.0,
            "The output is a valid JSON document (an array).",
            id="openinference openai: the choice's content is a JSON array",
        ),
        pytest.param(
            {"messages": [lc("AIMessage", '```json\n{"ok": true}\n```')]},
            0.0,
            "The output is not valid JSON: Expecting value: line 1 column 1 (char 0).",
            id="langchain: a fenced code block is not a JSON document",
        ),
        pytest.param(
            "42",
            0.0,
            "The output is JSON a number, not a JSON object or array.",
            id="a bare number parses but is not structured output",
        ),
        pytest.param(
            '"hello"',
            0.0,
            "The output is JSON a string, not a JSON object or array.",
            id="a bare JSON string is not structured output",
        ),
        pytest.param(
            "Your order ships Friday.",
            0.0,
            "The output is not valid JSON: Expecting value: line 1 column 1 (char 0).",
            id="mastra: a prose answer is not JSON",
        ),
        pytest.param(
            {"order_id": "1042", "status": "shipped"},
            1.0,
            "The output is structured: a JSON document (an object).",
            id="openinference: JSON output decoded at ingest is a JSON object",
        ),
        pytest.param(
            {"text": "{broken", "files": []},
            0.0,
            "The output is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1).",
            id="mastra: an agent result is judged by its text, not by the result object",
        ),
        pytest.param(
            {"text": '{"order_id": "1042"}', "object": {"order_id": "1042"}, "files": []},
            1.0,
            "The output is structured: a JSON document (an object).",
            id="mastra: an agent result with a structured object is JSON",
        ),
    ],
)
def test_json_validity_on_agent_traces(output, score, reason):
    result = scored("json-validity", trace(mastra_user("Give me the order as JSON"), output))
    assert result.score == score
    assert result.reason == reason


def test_json_validity_of_an_empty_answer_message_is_refused():
    with pytest.raises(ScorerError, match="has no output to check"):
        scored("json-validity", trace(mastra_user("JSON please"), [genai("assistant", "")]))


# --- tool-call accuracy ----------------------------------------------------------------------

DECLINED = "Card declined by the payment provider"
EXPECT_REFUND = {"expected_tools": ["refund_payment"]}


@pytest.mark.parametrize(
    ("metadata", "tools", "score", "reason"),
    [
        pytest.param(
            EXPECT_REFUND,
            [
                tool("refund_payment", {"order_id": "1042"}, error=DECLINED, index=0),
                tool("refund_payment", {"order_id": "1042"}, error=DECLINED, index=1),
            ],
            0.0,
            f"Called 0 of 1 expected tools successfully; failed: refund_payment ({DECLINED}).",
            id="two failed calls of the expected tool are not a hit",
        ),
        pytest.param(
            EXPECT_REFUND,
            [
                tool("refund_payment", {"order_id": "1042"}, error=DECLINED, index=0),
                tool("refund_payment", {"order_id": "1042"}, {"refunded": True}, index=1),
            ],
            1.0,
            "Called 1 of 1 expected tools successfully.",
            id="a failed call retried successfully is a hit",
        ),
        pytest.param(
            {"expected_tools": ["lookup_order", "refund_payment"]},
            [tool("lookup_order", {"order_id": "1042"}, {"status": "delivered"})],
            0.5,
            "Called 1 of 2 expected tools successfully; not called: refund_payment.",
            id="one of two expected tools never called",
        ),
        pytest.param(
            EXPECT_REFUND,
            [
                tool("refund_payment", {"order_id": "1042"}, {"refunded": True}, index=0),
                tool("delete_account", {"email": "jane@example.com"}, {"ok": True}, index=1),
            ],
            0.5,
            "Called 1 of 1 expected tools successfully; unexpected: delete_account.",
            id="an unexpected tool halves a perfect score",
        ),
        pytest.param(
            {},
            [
                tool("get_weather", None, {"temp": 12}, index=0),
                tool("get_weather", None, {"temp": 12}, index=1),
            ],
            1.0,
            "2 of 2 tool calls went right.",
            id="calls whose arguments were not recorded are not repeats",
        ),
        pytest.param(
            {},
            [
                tool("lookup_order", {"order_id": "1042"}, {"status": "shipped"}, index=0),
                tool("lookup_order", {"order_id": "1042"}, {"status": "shipped"}, index=1),
            ],
            0.5,
            "1 of 2 tool calls went right; repeated with the same arguments: lookup_order.",
            id="asking the same tool the same thing twice is a repeat",
        ),
        pytest.param(
            {},
            [
                tool("refund_payment", {"order_id": "1042"}, error=DECLINED, index=0),
                tool("refund_payment", {"order_id": "1042"}, {"refunded": True}, index=1),
            ],
            0.5,
            f"1 of 2 tool calls went right; failed: refund_payment ({DECLINED}).",
            id="a retry after a failure is not a repeat, the failure still counts",
        ),
        pytest.param(
            {},
            [],
            1.0,
            "The trace made no tool calls, so none went wrong.",
            id="no tool calls and no expectations",
        ),
    ],
)
def test_tool_call_accuracy_on_agent_traces(metadata, tools, score, reason):
    data = trace(mastra_user("Refund order 1042"), "Done.", metadata=metadata, tools=tools)
    result = scored("tool-call-accuracy", data)
    assert result.score == pytest.approx(score)
    assert result.reason == reason


# --- latency and error-free ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("took_ms", "metadata", "score", "reason"),
    [
        pytest.param(
            2400, {}, 1.0, "Took 2.40 s, within the budget of 10.00 s.", id="within the default"
        ),
        pytest.param(
            2400,
            {"latency_budget_ms": 1200},
            0.5,
            "Took 2.40 s, over the budget of 1.20 s.",
            id="twice the trace's own budget scores half",
        ),
    ],
)
def test_latency_on_agent_traces(settings, took_ms, metadata, score, reason):
    settings.TRACESCORE_LATENCY_BUDGET_MS = 10_000
    data = trace(mastra_user("Where is my order?"), "Friday.", metadata=metadata, took_ms=took_ms)
    result = scored("latency", data)
    assert result.score == pytest.approx(score)
    assert result.reason == reason


@pytest.mark.parametrize(
    ("tools", "score", "reason"),
    [
        pytest.param(
            [tool("lookup_order", {"order_id": "1042"}, {"status": "shipped"})],
            1.0,
            "None of the 2 spans failed.",
            id="every span ended ok",
        ),
        pytest.param(
            [tool("refund_payment", {"order_id": "1042"}, error=DECLINED)],
            0.0,
            f"1 of 2 spans failed: execute_tool refund_payment ({DECLINED}).",
            id="a failed tool span fails the trace, named with its error",
        ),
    ],
)
def test_error_free_on_agent_traces(tools, score, reason):
    result = scored("error-free", trace(mastra_user("Refund 1042"), "Done.", tools=tools))
    assert result.score == score
    assert result.reason == reason
