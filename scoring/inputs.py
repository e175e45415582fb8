"""Build a ``ScoringInput`` for one trace from the database.

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


def _message_text(message: dict[str, Any]) -> str:
    """The text of one chat message: `content` as a string or parts, or GenAI `parts`."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else message.get("parts")
    if isinstance(parts, list):
        texts = []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") in TEXT_PART_TYPES:
                value = part.get("content", part.get("text"))
                if isinstance(value, str):
                    texts.append(value)
        return "\n".join(texts)
    return ""


def _is_message_list(value: Any) -> bool:
    """Chat messages, or Responses items (messages among typed items such as function calls)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and ("role" in m or "type" in m) for m in value)
        and any("role" in m for m in value)
    )


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
    for message in reversed(messages):
        if message.get("role") in roles:
            text = _message_text(message)
            if text:
                return text
    return ""


def text_of(value: Any, *, role: str = "assistant") -> str:
    """Plain text of a stored input or output.

    Strings stay as they are (JSON strings are decoded first); chat message
    lists give the last message of ``role``; OpenAI-style ``choices`` give the
    first choice; dicts give their first answer-like key; anything else is
    compact JSON, so a scorer always gets text.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                decoded = json.loads(stripped)
            except ValueError:
                return value
            return text_of(decoded, role=role) or value
        return value
    if _is_message_list(value):
        roles = ("assistant", "model") if role == "assistant" else (role,)
        return _last_message(value, roles) or _message_text(value[-1])
    if isinstance(value, dict):
        if "role" in value:
            return _message_text(value)
        if _is_response(value):
            return response_output_text(value)
        choices = value.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            first = choices[0]
            return text_of(first.get("message") or first.get("text"), role=role)
        keys = ANSWER_KEYS if role == "assistant" else QUESTION_KEYS
        for key in keys:
            if key in value and value[key] not in (None, ""):
                return text_of(value[key], role=role)
        if "messages" in value:
            return text_of(value["messages"], role=role)
    if isinstance(value, (int, float, bool)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, default=str)


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


def scoring_input_from_spans(
    trace_id: str, spans: list[SpanSummary], span_id: str | None = None
) -> ScoringInput:
    """Pure: the ScoringInput for these spans (already in start order)."""
    if not spans:
        raise ScorerError(f"Trace {trace_id} has no spans to score.")
    scored, notes = choose_scored_span(spans, span_id)
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
        for s in spans
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
        for s in spans
        if s.span_type == "llm_generation"
    )
    question = text_of(scored.input, role="user")
    if not question:
        question = next((step.input_text for step in llm_steps if step.input_text), "")
    system_prompt = next((step.system_prompt for step in llm_steps if step.system_prompt), "")
    root = next((s for s in spans if not s.parent_span_id), scored)
    system_prompt = _agent_instructions(scored, root, spans) or system_prompt
    duration_ms = scored.duration_ms
    if scored is root and spans:
        ends = [s.ended_at for s in spans if s.ended_at]
        if ends:
            duration_ms = max(
                duration_ms or 0, (max(ends) - spans[0].started_at).total_seconds() * 1000
            )
    return ScoringInput(
        trace_id=trace_id,
        span_id=scored.span_id,
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
        metadata=_metadata(root),
        started_at=scored.started_at,
        duration_ms=duration_ms,
        notes=notes,
    )


def build_scoring_input(trace_id: str, *, span_id: str | None = None) -> ScoringInput:
    """Read a trace's spans and build what a scorer sees; ScorerError if there is nothing."""
    if not Trace.objects.filter(trace_id=trace_id).exists():
        raise ScorerError(f"Trace {trace_id} does not exist.")
    spans = [_summary(span) for span in Span.objects.filter(trace_id=trace_id).in_order()]
    return scoring_input_from_spans(trace_id, spans, span_id)
