"""Map span attributes onto the fields tracescore shows and scores.

Four conventions are understood, first match wins for each field:

1. tracescore's native attributes: ``tracescore.span_type``, ``tracescore.input``,
   ``tracescore.output`` (JSON text or any value).
2. Mastra (``@mastra/otel-exporter`` 1.x, and ``@mastra/arize``, which keeps the
   ``mastra.*`` attributes next to the OpenInference ones it writes): every span
   carries ``mastra.span.type`` (Mastra's own span type: ``agent_run``,
   ``model_generation``, ``model_step``, ``model_inference``, ``model_chunk``,
   ``tool_call``, ``mcp_tool_call``, ``workflow_run``, ``workflow_step``,
   ``processor_run`` …), which decides the span type (``MASTRA_SPAN_TYPES``), and
   spans whose input/output are not GenAI messages or tool arguments carry them
   as ``mastra.<type>.input`` / ``mastra.<type>.output`` (JSON text, or the plain
   text of a question). ``tracingOptions.metadata`` and the run's ids arrive as
   ``mastra.metadata.<key>`` on every span; ``mastra_metadata`` turns them into
   the trace metadata scorers read, and ``mastra_instructions`` finds the agent's
   instructions (its system prompt). Model, tokens and tool names come from the
   GenAI/OpenInference attributes the exporters also write, which they put on
   exactly one span per model call (``model_inference`` with the OTel exporter
   1.4, ``model_generation`` with older pairings and ``@mastra/arize`` 1.3), so
   a trace's token totals count every call once.
3. OpenInference (Arize Phoenix, LlamaIndex, LangChain, DSPy instrumentations):
   ``openinference.span.kind``, ``input.value`` / ``output.value`` with their
   ``*.mime_type``, ``llm.model_name``, ``llm.token_count.*``, ``tool.name`` and the
   flattened ``llm.input_messages.N.message.*`` attributes (with their
   ``contents.M.message_content.*`` parts and ``tool_calls.K.tool_call.*``).
4. OpenTelemetry GenAI semantic conventions: ``gen_ai.operation.name``,
   ``gen_ai.agent.name``, ``gen_ai.request.model`` / ``gen_ai.response.model``,
   ``gen_ai.usage.*``, ``gen_ai.input.messages`` / ``gen_ai.output.messages``,
   ``gen_ai.system_instructions`` (put in front of the input as a system message),
   ``gen_ai.tool.name`` and ``gen_ai.tool.call.arguments`` / ``.result``.

Anything else is a ``generic`` span. Attributes are never removed: the caller
keeps them all. Everything here is pure, so it is tested without a database.
``docs/ingest.md`` has the table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from observability.choices import SpanType

SPAN_TYPES = frozenset(SpanType.values)

OPENINFERENCE_KINDS = {
    "AGENT": SpanType.AGENT_RUN,
    "LLM": SpanType.LLM_GENERATION,
    "TOOL": SpanType.TOOL_CALL,
    "RETRIEVER": SpanType.RETRIEVAL,
    "RERANKER": SpanType.RETRIEVAL,
    "EMBEDDING": SpanType.EMBEDDING,
    # CHAIN is decided by position: a root chain is a workflow run, a nested one a step.
}

GENAI_OPERATIONS = {
    "invoke_agent": SpanType.AGENT_RUN,
    "create_agent": SpanType.AGENT_RUN,
    "invoke_workflow": SpanType.WORKFLOW_RUN,
    "chat": SpanType.LLM_GENERATION,
    "text_completion": SpanType.LLM_GENERATION,
    "generate_content": SpanType.LLM_GENERATION,
    "execute_tool": SpanType.TOOL_CALL,
    "embeddings": SpanType.EMBEDDING,
    "retrieval": SpanType.RETRIEVAL,
}

# Mastra's own span types (``mastra.span.type``, @mastra/core 1.x ``SpanType``).
# Any other Mastra type (generic, scorer_run, memory_operation, mcp_server_request,
# rag_action, workspace_action …) is ``generic``, whatever else the span carries, so
# @mastra/otel-exporter and @mastra/arize traces get the same types.
MASTRA_SPAN_TYPES = {
    "agent_run": SpanType.AGENT_RUN,
    # The agent's model loop, and the provider call inside each of its steps.
    "model_generation": SpanType.LLM_GENERATION,
    "model_inference": SpanType.LLM_GENERATION,
    # One turn of the loop (model call, processors, tool calls): a step, not a call.
    "model_step": SpanType.WORKFLOW_STEP,
    "model_chunk": SpanType.GENERIC,  # one streamed event
    "tool_call": SpanType.TOOL_CALL,
    "mcp_tool_call": SpanType.TOOL_CALL,
    "provider_tool_call": SpanType.TOOL_CALL,
    "client_tool_call": SpanType.TOOL_CALL,
    "workflow_run": SpanType.WORKFLOW_RUN,
    "rag_ingestion": SpanType.WORKFLOW_RUN,
    "workflow_step": SpanType.WORKFLOW_STEP,
    "workflow_conditional": SpanType.WORKFLOW_STEP,
    "workflow_conditional_eval": SpanType.WORKFLOW_STEP,
    "workflow_parallel": SpanType.WORKFLOW_STEP,
    "workflow_loop": SpanType.WORKFLOW_STEP,
    "workflow_sleep": SpanType.WORKFLOW_STEP,
    "workflow_wait_event": SpanType.WORKFLOW_STEP,
    "processor_run": SpanType.WORKFLOW_STEP,
    "rag_embedding": SpanType.EMBEDDING,
    "rag_vector_operation": SpanType.RETRIEVAL,
}
MASTRA_METADATA_PREFIX = "mastra.metadata."
# Where @mastra/arize and the GenAI attributes put the ids Mastra keeps in its metadata.
_MASTRA_ID_ATTRIBUTES = (
    ("user.id", "userId"),
    ("session.id", "threadId"),
    ("gen_ai.conversation.id", "threadId"),
)

# Only text that can start a JSON document is parsed; prose is kept as it is.
_JSON_STARTS = frozenset('{["-0123456789tfn')
_MESSAGE_ATTR = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_PART_ATTR = re.compile(r"^contents\.(\d+)\.message_content\.(.+)$")
_TOOL_CALL_ATTR = re.compile(r"^tool_calls\.(\d+)\.tool_call\.(.+)$")


@dataclass
class MappedFields:
    """The span fields that come from attributes rather than from the span itself."""

    span_type: str = SpanType.GENERIC
    input: Any = None
    output: Any = None
    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    name: str = ""  # a name to use when the span has none (agent or tool name)


def map_attributes(attributes: dict[str, Any], *, is_root: bool = False) -> MappedFields:
    """Read span type, input/output, model and token counts from a span's attributes."""
    get = attributes.get
    mapped = MappedFields(span_type=span_type_of(attributes, is_root=is_root))

    mastra_type = get("mastra.span.type")
    mastra_input = f"mastra.{mastra_type}.input" if isinstance(mastra_type, str) else ""
    mastra_output = f"mastra.{mastra_type}.output" if isinstance(mastra_type, str) else ""

    if "tracescore.input" in attributes:
        mapped.input = parse_json_text(get("tracescore.input"))
    elif mastra_input in attributes:
        mapped.input = parse_json_text(get(mastra_input))
    elif "input.value" in attributes:
        mapped.input = _value_with_mime(get("input.value"), get("input.mime_type"))
    elif "gen_ai.input.messages" in attributes or "gen_ai.system_instructions" in attributes:
        mapped.input = _genai_input(attributes)
    elif "gen_ai.tool.call.arguments" in attributes:
        mapped.input = parse_json_text(get("gen_ai.tool.call.arguments"))

    if "tracescore.output" in attributes:
        mapped.output = parse_json_text(get("tracescore.output"))
    elif mastra_output in attributes:
        mapped.output = parse_json_text(get(mastra_output))
    elif "output.value" in attributes:
        mapped.output = _value_with_mime(get("output.value"), get("output.mime_type"))
    elif "gen_ai.output.messages" in attributes:
        mapped.output = parse_json_text(get("gen_ai.output.messages"))
    elif "gen_ai.tool.call.result" in attributes:
        mapped.output = parse_json_text(get("gen_ai.tool.call.result"))

    if mapped.input is None or mapped.output is None:
        messages = flattened_messages(attributes)
        if mapped.input is None and messages["input"]:
            mapped.input = messages["input"]
        if mapped.output is None and messages["output"]:
            mapped.output = messages["output"]

    model = get("llm.model_name") or get("gen_ai.response.model") or get("gen_ai.request.model")
    mapped.model = str(model)[:256] if model else ""
    mapped.input_tokens = _first_int(
        attributes,
        "llm.token_count.prompt",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
    )
    mapped.output_tokens = _first_int(
        attributes,
        "llm.token_count.completion",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
    )
    label = get("gen_ai.agent.name") or get("tool.name") or get("gen_ai.tool.name")
    mapped.name = str(label) if label else ""
    return mapped


def span_type_of(attributes: dict[str, Any], *, is_root: bool = False) -> str:
    """The tracescore span type: native attribute, Mastra's span type, OpenInference kind,
    then GenAI operation."""
    native = attributes.get("tracescore.span_type")
    if isinstance(native, str) and native in SPAN_TYPES:
        return native
    mastra_type = attributes.get("mastra.span.type")
    if isinstance(mastra_type, str):
        return MASTRA_SPAN_TYPES.get(mastra_type, SpanType.GENERIC)
    kind = attributes.get("openinference.span.kind")
    if isinstance(kind, str):
        kind = kind.upper()
        if kind == "CHAIN":
            return SpanType.WORKFLOW_RUN if is_root else SpanType.WORKFLOW_STEP
        if kind in OPENINFERENCE_KINDS:
            return OPENINFERENCE_KINDS[kind]
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in GENAI_OPERATIONS:
        return GENAI_OPERATIONS[operation]
    if "tool.name" in attributes or "gen_ai.tool.name" in attributes:
        return SpanType.TOOL_CALL
    return SpanType.GENERIC


def mastra_metadata(attributes: dict[str, Any]) -> dict[str, Any]:
    """Mastra's metadata on a span: ``tracingOptions.metadata`` and the run's ids.

    The OTel exporter writes each key as ``mastra.metadata.<key>`` (objects and
    lists as JSON text, which is decoded here, so ``expected_tools`` is a list
    again); ``@mastra/arize`` writes them as OpenInference ``metadata`` JSON, with
    ``userId`` as ``user.id`` and ``threadId`` as ``session.id``. Both give the same
    dict: ``runId``, ``resourceId``, ``threadId``, ``userId`` and the user's keys.
    """
    metadata: dict[str, Any] = {}
    is_mastra = isinstance(attributes.get("mastra.span.type"), str)
    if is_mastra:
        nested = parse_json_text(attributes.get("metadata"))
        if isinstance(nested, dict):
            metadata.update({key: _json_container(value) for key, value in nested.items()})
    for key, value in attributes.items():
        if key.startswith(MASTRA_METADATA_PREFIX):
            metadata[key[len(MASTRA_METADATA_PREFIX) :]] = _json_container(value)
    if is_mastra:
        for attribute, key in _MASTRA_ID_ATTRIBUTES:
            value = attributes.get(attribute)
            if isinstance(value, str) and value:
                metadata.setdefault(key, value)
    return metadata


def mastra_instructions(attributes: dict[str, Any]) -> str:
    """A Mastra agent's instructions (its system prompt), from its ``agent_run`` span."""
    if attributes.get("mastra.span.type") != "agent_run":
        return ""
    instructions = attributes.get("gen_ai.system_instructions")
    return instructions if isinstance(instructions, str) else ""


def _json_container(value: Any) -> Any:
    """JSON text of an object or a list is decoded; anything else is kept as it is."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_json_text(value: Any) -> Any:
    """JSON text becomes the value it encodes; anything else is kept as it is."""
    if isinstance(value, str) and value.lstrip()[:1] in _JSON_STARTS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _genai_input(attributes: dict[str, Any]) -> Any:
    """``gen_ai.input.messages``, with ``gen_ai.system_instructions`` as a first system message.

    The GenAI conventions keep the system prompt out of the messages; putting it
    back in front shows the model's whole input in one place.
    """
    messages = parse_json_text(attributes.get("gen_ai.input.messages"))
    instructions = system_instructions(attributes)
    if instructions is None:
        return messages
    system = {"role": "system", "parts": instructions}
    if messages is None:
        return [system]
    if isinstance(messages, list):
        return [system, *messages]
    return messages  # not the documented shape: keep it as sent


def _value_with_mime(value: Any, mime_type: Any) -> Any:
    if isinstance(mime_type, str) and mime_type.startswith("application/json"):
        return parse_json_text(value)
    return value


def flattened_messages(attributes: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rebuild OpenInference's flattened ``llm.input_messages`` / ``llm.output_messages``.

    ``llm.input_messages.N.message.role|content|name|tool_call_id`` become the
    fields of message N; ``message.contents.M.message_content.type|text`` become
    its ``content`` parts (``{"type": "text", "text": ...}``, as OpenAI writes
    them) and ``message.tool_calls.K.tool_call.id|function.name|function.arguments``
    its ``tool_calls``.
    """
    found: dict[str, dict[int, dict[str, Any]]] = {"input": {}, "output": {}}
    parts: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
    calls: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
    for key, value in attributes.items():
        if not key.startswith(("llm.input_messages.", "llm.output_messages.")):
            continue
        match = _MESSAGE_ATTR.match(key)
        if not match:
            continue
        direction, index, field = match.groups()
        message = found[direction].setdefault(int(index), {})
        if part := _PART_ATTR.match(field):
            slot = parts.setdefault((direction, int(index)), {}).setdefault(int(part[1]), {})
            name = part[2]
            slot["url" if name == "image.image.url" else name] = value
        elif call := _TOOL_CALL_ATTR.match(field):
            slot = calls.setdefault((direction, int(index)), {}).setdefault(int(call[1]), {})
            name = call[2]
            if name.startswith("function."):
                slot.setdefault("function", {})[name[len("function.") :]] = value
            else:
                slot[name] = value
        else:
            message[field] = value
    for (direction, index), by_part in parts.items():
        message = found[direction][index]
        if not isinstance(message.get("content"), str):
            message["content"] = [by_part[i] for i in sorted(by_part)]
    for (direction, index), by_call in calls.items():
        found[direction][index]["tool_calls"] = [by_call[i] for i in sorted(by_call)]
    return {
        direction: [by_index[i] for i in sorted(by_index)] for direction, by_index in found.items()
    }


def system_instructions(attributes: dict[str, Any]) -> list[dict[str, Any]] | None:
    """GenAI ``gen_ai.system_instructions`` as a list of parts (JSON text or plain text)."""
    value = parse_json_text(attributes.get("gen_ai.system_instructions"))
    if isinstance(value, str) and value.strip():
        return [{"type": "text", "content": value}]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value:
        return [{"type": "text", "content": p} if isinstance(p, str) else p for p in value]
    return None


def _first_int(attributes: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if 0 <= number < 2**31:
            return number
    return None
