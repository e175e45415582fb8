"""Build a ``ScoringInput`` for one trace, or one span of it, from the database.

Span scope (a Score of one span): the scorer sees that span's own input and
output, its subtree's tool calls and LLM steps (so a tool-call scorer on an
agent step sees that step's calls, not its siblings'), and the whole trace as
context (``spans``, the trace's metadata, the agent's instructions). See
docs/scorers.md.

Which span is scored (trace scope): the root, i.e. the span without a parent.
When no root has arrived yet, the earliest span is scored and a note says so;
when several spans claim to be the root, the earliest of them is scored (the
same rule ``observability.services`` uses for the trace's name).

Everything else here is pure: ``text_of`` and friends turn the shapes that
OpenInference, OpenTelemetry GenAI and the native API store into plain text.
"""

from __future__ import annotations

import json
from typing import Any

from observability.conventions import (
    flattened_messages,
    mastra_instructions,
    mastra_metadata,
    parse_json_text,
    system_instructions,
)
from observability.models import Span, Trace
from scoring.scorers.base import LLMStep, ScorerError, ScoringInput, SpanSummary, ToolCall

ANSWER_KEYS = ("answer", "output", "response", "result", "text", "content", "message", "value")
QUESTION_KEYS = ("question", "query", "input", "prompt", "text", "content", "message")
# Text parts of a message: chat ("text"), Responses input ("input_text") and output ("output_text").
TEXT_PART_TYPES = ("text", "input_text", "output_text")
SYSTEM_ROLES = ("system", "developer")

# Role names as the SDKs spell them, LangChain's message classes and types included.
ROLES = {
    "user": "user",
    "human": "user",
    "humanmessage": "user",
    "humanmessagechunk": "user",
    "assistant": "assistant",
    "model": "assistant",
    "ai": "assistant",
    "aimessage": "assistant",
    "aimessagechunk": "assistant",
    "system": "system",
    "developer": "system",
    "systemmessage": "system",
    "tool": "tool",
    "function": "tool",
    "toolmessage": "tool",
    "functionmessage": "tool",
}


def _role(name: Any) -> str:
    return ROLES.get(name.lower(), name.lower()) if isinstance(name, str) else ""


def _as_message(value: Any) -> tuple[str, Any] | None:
    """(role, content) when ``value`` is one chat message in a shape an SDK stores, else None.

    Shapes: ``{"role", "content" | "parts"}`` (OpenAI, Anthropic, GenAI, Mastra, and
    OpenInference's flattened ``llm.*_messages``), LangChain's serialised
    ``{"lc": 1, "type": "constructor", "id": [..., "HumanMessage"], "kwargs": {...}}``,
    LangChain's ``{"type": "human", "data": {...}}`` and ``("user", "text")`` pairs.
    """
    if isinstance(value, dict):
        if isinstance(value.get("role"), str) and (
            {"content", "parts", "tool_calls"} & value.keys()
            or any(key.startswith(("contents.", "tool_calls.")) for key in value)
        ):
            return _role(value["role"]), value
        ids = value.get("id")
        if value.get("lc") == 1 and isinstance(ids, list) and ids and isinstance(ids[-1], str):
            role = _role(ids[-1])
            kwargs = value.get("kwargs")
            if role in ("user", "assistant", "system", "tool") and isinstance(kwargs, dict):
                if kwargs.get("role"):  # ChatMessage carries its own role
                    role = _role(kwargs["role"])
                return role, kwargs
        kind = value.get("type")
        if isinstance(kind, str) and _role(kind) in ("user", "assistant", "system", "tool"):
            data = value.get("data")
            if isinstance(data, dict) and "content" in data:
                return _role(kind), data
            if "content" in value:
                return _role(kind), value
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[1], str)
        and _role(value[0]) in ("user", "assistant", "system", "tool")
    ):
        return _role(value[0]), {"content": value[1]}
    return None


def _parts_text(parts: list[Any]) -> str:
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type", "text") in TEXT_PART_TYPES:
            value = part.get("content", part.get("text"))
            if isinstance(value, str):
                texts.append(value)
    return "\n".join(texts)


def _message_text(message: dict[str, Any]) -> str:
    """The text of one chat message: ``content`` as a string or parts, or GenAI ``parts``."""
    found = _as_message(message)
    if found is not None:
        message = found[1]
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, dict):  # Mastra's stored messages: {"format": 2, "parts": [...]}
        if isinstance(content.get("parts"), list):
            return _parts_text(content["parts"])
        return content["content"] if isinstance(content.get("content"), str) else ""
    parts = content if isinstance(content, list) else message.get("parts")
    if isinstance(parts, list):
        return _parts_text(parts)
    # OpenInference flattened: contents.N.message_content.text
    texts = [
        v
        for k, v in sorted(message.items())
        if k.startswith("contents.") and k.endswith(".message_content.text") and isinstance(v, str)
    ]
    return "\n".join(texts)


def _messages(value: Any) -> list[tuple[str, Any]] | None:
    """The messages of a chat, in order, when ``value`` is one (nested lists flattened,
    as LangChain stores ``[[message, ...]]``; Responses items other than messages
    skipped); None when it is not a chat."""
    if not isinstance(value, list) or not value:
        return None
    found: list[tuple[str, Any]] = []
    for item in value:
        message = _as_message(item)
        if message is not None:
            found.append(message)
            continue
        if isinstance(item, dict) and "type" in item and "role" not in item:
            continue  # a Responses item that is not a message (a function call…)
        inner = _messages(item) if isinstance(item, list) else None
        if inner is None:
            return None
        found.extend(inner)
    return found or None


def _is_message_list(value: Any) -> bool:
    return _messages(value) is not None


def _is_response(value: dict[str, Any]) -> bool:
    """An OpenAI Responses API response: ``object`` says so, or ``output`` holds typed
    items among which an assistant message (not any dict with an ``output`` list)."""
    output = value.get("output")
    return value.get("object") == "response" or (
        isinstance(output, list)
        and all(isinstance(item, dict) and "type" in item for item in output)
        and any(item["type"] == "message" and "role" in item for item in output)
    )


def response_output_text(response: dict[str, Any]) -> str:
    """The text of a Responses API response: its message items' ``output_text`` parts.

    A response that only calls tools has no text.
    """
    texts = [
        _message_text(item)
        for item in response.get("output") or []
        if isinstance(item, dict) and item.get("type", "message") == "message"
    ]
    return "\n".join(text for text in texts if text)


def _last_message(messages: list[dict[str, Any]], roles: tuple[str, ...]) -> str:
    wanted = {_role(r) for r in roles}
    for role, message in reversed(_messages(messages) or []):
        if role in wanted:
            text = _message_text(message)
            if text:
                return text
    return ""


def _decoded(text: str) -> Any:
    """The value a JSON document or JSON string encodes; ``text`` itself when it is not one."""
    stripped = text.strip()
    if (stripped[:1], stripped[-1:]) in (("{", "}"), ("[", "]"), ('"', '"')):
        try:
            return json.loads(stripped)
        except ValueError:
            return text
    return text


def _leaf_texts(value: Any, role: str) -> list[str]:
    """Every string inside nested dicts and lists; keys are never text."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _leaf_texts(v, role)]
    if isinstance(value, list):
        return [t for v in value for t in _leaf_texts(v, role)]
    if isinstance(value, str):
        text = text_of(value, role=role)
        return [text] if text.strip() else []
    return []  # a number or flag means nothing without the key it stands under


def text_of(value: Any, *, role: str = "assistant") -> str:
    """The text a person would read in a stored input or output; "" when there is none.

    Strings stay as they are (JSON text is decoded first). A chat gives its last
    message of ``role`` ("user" for a question, else the assistant's answer), and
    nothing when it has no such message; OpenAI ``choices`` and LangChain
    ``generations`` give the first one; a dict gives its chat, else its first
    answer-like (or question-like) key, else the strings inside it, one per
    line. JSON syntax, keys, and numbers or flags inside a structure never
    become text; a number on its own does.
    """
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, str):
        decoded = _decoded(value)
        return value if decoded is value else text_of(decoded, role=role)
    if isinstance(value, (int, float)):
        return str(value)
    message = _as_message(value)
    if message is not None:
        return _message_text(message[1])
    if _is_message_list(value):
        return _last_message(value, (role,))
    if isinstance(value, dict):
        if _is_response(value):
            return response_output_text(value)
        for key in ("choices", "generations", "candidates"):
            first = value.get(key)
            while isinstance(first, list) and first:  # LangChain nests generations twice
                first = first[0]
            if isinstance(first, dict):
                return text_of(
                    first.get("message") or first.get("content") or first.get("text"), role=role
                )
        if "messages" in value and _is_message_list(value["messages"]):
            return text_of(value["messages"], role=role)
        keys = ANSWER_KEYS if role == "assistant" else QUESTION_KEYS
        for key in keys:
            if key in value and value[key] not in (None, ""):
                text = text_of(value[key], role=role)
                if text.strip():
                    return text
    return "\n".join(_leaf_texts(value, role))


# What a Mastra agent's generate() returns, as its agent run span stores it:
# ``{"text": ..., "object": ..., "files": [...]}``, more keys on some versions.
MASTRA_RESULT_KEYS = frozenset(
    "text object files reasoning reasoningText sources toolCalls toolResults finishReason "
    "usage warnings steps response".split()
)


def produced_text(value: Any) -> str | None:
    """The text a span produced, as it produced it: a string output, the answer's
    content when the output is a chat (message, message list, ``choices``…), or
    the ``text`` of a Mastra agent result.

    None when the output is any other structured value (a Mastra result with
    an ``object`` included): the exporter sent JSON and the ingest already
    decoded it, so there is no text left to check.
    """
    if isinstance(value, str):
        return value
    if (
        isinstance(value, dict)
        and isinstance(value.get("text"), str)
        and value.keys() <= MASTRA_RESULT_KEYS
        and ("files" in value or "object" in value)
    ):
        return None if value.get("object") is not None else value["text"]
    if _as_message(value) is not None or _is_message_list(value):
        return text_of(value)
    if isinstance(value, dict) and (
        any(isinstance(value.get(k), list) for k in ("choices", "generations", "candidates"))
        or _is_message_list(value.get("messages"))
    ):
        return text_of(value)
    return None


def system_prompt_of(value: Any, attributes: dict[str, Any] | None = None) -> str:
    """The system prompt of an LLM step, from its stored input, else from its attributes.

    In the input: a system or developer message of a message list; in a request
    dict, the Responses API's ``instructions``, Anthropic's ``system``, or such a
    message in ``messages`` / ``input`` (OpenInference keeps the whole request
    in ``input.value``). In the attributes: GenAI ``gen_ai.system_instructions``,
    then system messages in ``gen_ai.input.messages`` or OpenInference's
    ``llm.input_messages.N.message.*``.
    """
    text = _system_prompt_in(parse_json_text(value))
    if text or not attributes:
        return text
    instructions = system_instructions(attributes)
    if instructions:
        return _message_text({"parts": instructions})
    text = _system_prompt_in(parse_json_text(attributes.get("gen_ai.input.messages")))
    return text or _system_prompt_in(flattened_messages(attributes)["input"])


def _system_prompt_in(value: Any) -> str:
    if _is_message_list(value):
        return _last_message(value, SYSTEM_ROLES)
    if not isinstance(value, dict):
        return ""
    for key in ("instructions", "system"):
        given = value.get(key)
        if isinstance(given, str) and given.strip():
            return given
        if isinstance(given, list) and given:
            if _is_message_list(given):
                return _last_message(given, SYSTEM_ROLES)
            return _message_text({"content": given})
    for key in ("messages", "input"):
        if _is_message_list(value.get(key)):
            text = _last_message(value[key], SYSTEM_ROLES)
            if text:
                return text
    return ""


def _summary(span: Span) -> SpanSummary:
    return SpanSummary(
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        span_type=span.span_type,
        status=span.status,
        error_message=span.error_message,
        started_at=span.started_at,
        ended_at=span.ended_at,
        duration_ms=span.duration_ms,
        input=span.input,
        output=span.output,
        attributes=span.attributes or {},
        model=span.model,
        input_tokens=span.input_tokens,
        output_tokens=span.output_tokens,
    )


def _metadata(root: SpanSummary) -> dict[str, Any]:
    """The trace's metadata: ``attributes["metadata"]``, ``metadata.*`` attributes and
    Mastra's ``mastra.metadata.*`` (``observability.conventions.mastra_metadata``)."""
    attributes = root.attributes or {}
    metadata: dict[str, Any] = {}
    nested = attributes.get("metadata")
    if isinstance(nested, str):
        try:
            nested = json.loads(nested)
        except ValueError:
            nested = None
    if isinstance(nested, dict):
        metadata.update(nested)
    for key, value in attributes.items():
        for prefix in ("tracescore.metadata.", "metadata."):
            if key.startswith(prefix):
                metadata[key[len(prefix) :]] = value
    metadata.update(mastra_metadata(attributes))
    return metadata


def _agent_instructions(scored: SpanSummary, root: SpanSummary, spans: list[SpanSummary]) -> str:
    """A Mastra agent's instructions: the scored span's, the root's, else the first agent's."""
    for span in (scored, root, *spans):
        instructions = mastra_instructions(span.attributes or {})
        if instructions:
            return instructions
    return ""


def choose_scored_span(
    spans: list[SpanSummary], span_id: str | None = None
) -> tuple[SpanSummary, tuple[str, ...]]:
    """The span to score and notes on how it was chosen (spans in start order)."""
    if span_id:
        for span in spans:
            if span.span_id == span_id:
                return span, ()
        raise ScorerError(f"The trace has no span {span_id}.")
    roots = [span for span in spans if not span.parent_span_id]
    if len(roots) == 1:
        return roots[0], ()
    if roots:
        return roots[0], (
            f"{len(roots)} spans have no parent; scored the earliest, {roots[0].span_id}.",
        )
    return spans[0], (
        f"The trace's root span has not arrived yet; scored the earliest span, "
        f"{spans[0].span_id} ({spans[0].name}).",
    )


def subtree_of(spans: list[SpanSummary], top: SpanSummary) -> list[SpanSummary]:
    """``top`` and every span below it, in the order of ``spans``."""
    children: dict[str | None, list[str]] = {}
    for span in spans:
        children.setdefault(span.parent_span_id, []).append(span.span_id)
    inside, stack = set(), [top.span_id]
    while stack:
        current = stack.pop()
        if current not in inside:
            inside.add(current)
            stack.extend(children.get(current, ()))
    return [span for span in spans if span.span_id in inside]


def scoring_input_from_spans(
    trace_id: str, spans: list[SpanSummary], span_id: str | None = None, scope: str = "trace"
) -> ScoringInput:
    """Pure: the ScoringInput for these spans (already in start order).

    ``scope="span"`` scores the span ``span_id`` on its own: its subtree's tool
    calls and LLM steps, the trace as context. Trace scope (the default) scores
    the root (or ``span_id``) with the whole trace's calls and steps.
    """
    if not spans:
        raise ScorerError(f"Trace {trace_id} has no spans to score.")
    scored, notes = choose_scored_span(spans, span_id)
    span_scope = scope == "span" and bool(span_id)
    subtree = subtree_of(spans, scored)
    scoped = subtree if span_scope else spans
    tool_calls = tuple(
        ToolCall(
            span_id=s.span_id,
            name=str(
                s.attributes.get("tool.name") or s.attributes.get("gen_ai.tool.name") or s.name
            ),
            arguments=s.input,
            result=s.output,
            error=s.error_message if s.status == "error" else "",
            started_at=s.started_at,
            duration_ms=s.duration_ms,
        )
        for s in scoped
        if s.span_type == "tool_call"
    )
    llm_steps = tuple(
        LLMStep(
            span_id=s.span_id,
            model=s.model,
            input=s.input,
            output=s.output,
            input_text=text_of(s.input, role="user"),
            output_text=text_of(s.output),
            system_prompt=system_prompt_of(s.input, s.attributes),
            input_tokens=s.input_tokens,
            output_tokens=s.output_tokens,
            error=s.error_message if s.status == "error" else "",
            started_at=s.started_at,
            duration_ms=s.duration_ms,
        )
        for s in scoped
        if s.span_type == "llm_generation"
    )
    question = text_of(scored.input, role="user")
    if not question:
        question = next((step.input_text for step in llm_steps if step.input_text), "")
    system_prompt = next((step.system_prompt for step in llm_steps if step.system_prompt), "")
    root = next((s for s in spans if not s.parent_span_id), scored)
    if not (span_scope and scored.span_type == "llm_generation" and system_prompt):
        # An LLM generation scored on its own keeps the system prompt it was sent.
        system_prompt = _agent_instructions(scored, root, spans) or system_prompt
    duration_ms = scored.duration_ms
    if scored is root and spans and not span_scope:
        ends = [s.ended_at for s in spans if s.ended_at]
        if ends:
            duration_ms = max(
                duration_ms or 0, (max(ends) - spans[0].started_at).total_seconds() * 1000
            )
    return ScoringInput(
        trace_id=trace_id,
        span_id=scored.span_id,
        scope="span" if span_scope else "trace",
        span_name=scored.name,
        span_type=scored.span_type,
        input=scored.input,
        output=scored.output,
        input_text=text_of(scored.input, role="user"),
        output_text=text_of(scored.output),
        question=question,
        system_prompt=system_prompt,
        tool_calls=tool_calls,
        llm_steps=llm_steps,
        spans=tuple(spans),
        subtree=tuple(subtree),
        metadata=_metadata(root),
        started_at=scored.started_at,
        duration_ms=duration_ms,
        notes=notes,
    )


def build_scoring_input(
    trace_id: str, *, span_id: str | None = None, scope: str = "trace"
) -> ScoringInput:
    """Read a trace's spans and build what a scorer sees; ScorerError if there is nothing."""
    if not Trace.objects.filter(trace_id=trace_id).exists():
        raise ScorerError(f"Trace {trace_id} does not exist.")
    spans = [_summary(span) for span in Span.objects.filter(trace_id=trace_id).in_order()]
    return scoring_input_from_spans(trace_id, spans, span_id, scope)


def build_scoring_inputs(
    targets: list[tuple[str, str | None, str]],
) -> list[ScoringInput | ScorerError]:
    """``build_scoring_input`` for many (trace id, span id, scope) targets with two
    queries in all: which traces exist, and all their spans. Each target gets its
    ScoringInput, or the ScorerError that says why there is none."""
    trace_ids = {trace_id for trace_id, _, _ in targets}
    known = set(Trace.objects.filter(trace_id__in=trace_ids).values_list("trace_id", flat=True))
    spans: dict[str, list[SpanSummary]] = {}
    if known:
        rows = Span.objects.filter(trace_id__in=known).order_by("trace_id", "started_at", "span_id")
        for span in rows:
            spans.setdefault(span.trace_id, []).append(_summary(span))
    built: list[ScoringInput | ScorerError] = []
    for trace_id, span_id, scope in targets:
        try:
            if trace_id not in known:
                raise ScorerError(f"Trace {trace_id} does not exist.")
            trace_spans = spans.get(trace_id, [])
            built.append(scoring_input_from_spans(trace_id, trace_spans, span_id, scope))
        except ScorerError as error:
            built.append(error)
    return built
