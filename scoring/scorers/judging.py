"""How a judge talks to its model: steps, structured answers, repairs, time and cost.

A judge (``scoring.scorers.judges``) is a few *steps*; each step is one chat
call that asks for one JSON object. ``JudgeRun.ask`` sends it with a JSON
schema as ``response_format`` (structured output) where the endpoint takes it,
and as plain JSON asked for in the prompt where it refuses it (the endpoint
is remembered). The answer is validated with pydantic; an answer that does not
validate gets one repair request (the error, and the same question again),
and a second bad answer fails the Score with that raw answer kept.

Everything is recorded for the Score's ``details``: per step the prompt, the
raw answer (and the malformed one that was repaired), the parsed verdicts,
tokens, cost and latency; in total the model, tokens, cost and latency. A
failure keeps the steps made so far (they were paid for) through
``ScorerFailure``.

Time: each call waits at most ``TRACESCORE_JUDGE_TIMEOUT`` seconds and failed
calls (408, 409, 5xx, timeouts, connection errors) are retried up to
``TRACESCORE_JUDGE_MAX_RETRIES`` times, all within the scorer run's deadline
(``time_left()``): a call never outlives the run's time limit and no call or
retry starts past it, so nothing is sent, or billed, for a Score already
failed. The retries are ours rather than the OpenAI client's because its
back-off honours a server's ``retry-after`` of up to a minute, whatever the
deadline.

Rate limits: a 429 answer is retried after the server's ``retry-after-ms`` /
``retry-after`` (else an exponential back-off) for as long as the deadline
allows, not counted against ``TRACESCORE_JUDGE_MAX_RETRIES``: a storm of 429s
slows scoring down but fails nothing. When the endpoint is still throttling at
the deadline, or the shared request/token budget
(``scoring.scorers.limits``, ``TRACESCORE_JUDGE_RPM``/``TPM``) has no room
before it, the run raises ``ScorerThrottled`` and the worker queues the Score
again. Each call also holds one of the worker process's
``TRACESCORE_JUDGE_CONCURRENCY`` call slots while it is in flight.

Cost: ``TRACESCORE_JUDGE_PRICES`` gives US dollars per million input and output
tokens by model; a model without a price has a cost of None, never a guess.
"""

from __future__ import annotations

import email.utils
import functools
import json
import os
import random
import re
import threading
import time
from typing import Annotated, Any, Literal, TypeVar

import openai
from django.conf import settings
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, BeforeValidator, ValidationError

from scoring.scorers import limits
from scoring.scorers.base import ScorerError, ScorerFailure, ScorerThrottled, time_left

NOT_CONFIGURED = (
    "No LLM judge configured: set TRACESCORE_JUDGE_BASE_URL and TRACESCORE_JUDGE_MODEL."
)
SYSTEM = (
    "You are a strict, fair evaluator of what an AI agent answered. You never use knowledge "
    "beyond what you are given. Reply with one JSON object exactly as asked, and nothing else."
)
REPAIR = (
    "Your answer could not be used: {error}\n"
    "Answer the same request again with only the JSON object asked for, exactly in the "
    "format asked for."
)
RETRY_STATUSES = {408, 409}
THROTTLED = 429
# Without a deadline (a direct call), how many 429s in a row a call sits out.
MAX_THROTTLED_WITHOUT_DEADLINE = 20
# A call with less time than this left is not worth starting.
SHORTEST_CALL = 0.05
# Base URLs whose endpoint refused a JSON-schema response_format: asked in plain JSON.
NO_STRUCTURED_OUTPUT: set[str] = set()

Schema = TypeVar("Schema", bound=BaseModel)


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


# A verdict as models spell it ("Yes", " no") before it is checked against the choices.
YesNo = Annotated[Literal["yes", "no"], BeforeValidator(_lower)]
YesNoUnsure = Annotated[Literal["yes", "no", "unsure"], BeforeValidator(_lower)]


def judge_config() -> tuple[str, str, str]:
    return (
        settings.TRACESCORE_JUDGE_BASE_URL,
        settings.TRACESCORE_JUDGE_API_KEY,
        settings.TRACESCORE_JUDGE_MODEL,
    )


# --- cost --------------------------------------------------------------------


def price_of(model: str) -> dict[str, float] | None:
    """The price of ``model`` per million tokens: its own, else its longest listed prefix
    (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``); a provider prefix (``openai/``) is
    ignored. None when the table has no price for it."""
    prices = settings.TRACESCORE_JUDGE_PRICES
    name = (model or "").strip().lower()
    for candidate in (name, name.rsplit("/", 1)[-1]):
        if candidate in prices:
            return prices[candidate]
        prefixes = [key for key in prices if candidate.startswith(key.lower() + "-")]
        if prefixes:
            return prices[max(prefixes, key=len)]
    return None


def cost_usd(model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
    """Tokens × price, in US dollars; None when the model has no price or usage is unknown."""
    price = price_of(model)
    if price is None or prompt_tokens is None or completion_tokens is None:
        return None
    cost = (prompt_tokens * price["input"] + completion_tokens * price["output"]) / 1_000_000
    return round(cost, 8)


# --- answers -----------------------------------------------------------------


@functools.cache
def strict_json_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a pydantic model in the form strict structured output takes:
    every property required, no other properties allowed (built once per model; do not
    change the answer)."""

    def tighten(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: tighten(value) for key, value in node.items() if key != "default"}
            if isinstance(node.get("properties"), dict):
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            return node
        if isinstance(node, list):
            return [tighten(item) for item in node]
        return node

    return tighten(schema.model_json_schema())


def json_text(raw: str) -> str:
    """The JSON object in a model's answer: the answer itself, or the object inside a
    Markdown fence or prose around it."""
    text = raw.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    if not text.startswith("{"):
        found = re.search(r"\{.*\}", text, re.DOTALL)
        if found:
            text = found.group(0)
    return text


def parse_answer(raw: str, schema: type[Schema]) -> Schema:
    """The answer validated against ``schema``; ValueError saying what is wrong."""
    text = json_text(raw)
    if not text:
        raise ValueError("the answer is empty")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ValueError(f"the answer is not JSON ({error})") from None
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the object'}: {e['msg']}"
            for e in error.errors()[:5]
        )
        raise ValueError(f"the JSON does not have the fields asked for ({problems})") from None


def retry_delay(attempt: int, headers: Any = None) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's word, else back-off."""
    headers = headers or {}
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        if "retry-after" in headers:
            value = headers["retry-after"]
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        pass
    return min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())


_clients: dict[tuple[int, str, str], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def judge_client(base_url: str, api_key: str) -> openai.OpenAI:
    """One client per endpoint and process, shared by the threads that judge at once,
    so their calls reuse its pool of connections."""
    key = (os.getpid(), base_url, api_key)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = openai.OpenAI(
                base_url=base_url, api_key=api_key or "not-needed", max_retries=0
            )
            _clients[key] = client
        return client


def estimated_tokens(messages: list[dict]) -> int:
    """A rough count of a request's prompt tokens (4 characters a token) for the token
    budget; the real count, once answered, is charged on top when it is larger."""
    return sum(len(str(m.get("content") or "")) for m in messages) // 4 + 8 * len(messages)


# --- a run -------------------------------------------------------------------


class JudgeRun:
    """One judge scoring one trace: its steps' calls, and the record of them."""

    def __init__(self) -> None:
        self.base_url, api_key, self.model = judge_config()
        if not self.base_url or not self.model:
            raise ScorerError(NOT_CONFIGURED)
        self.client = judge_client(self.base_url, api_key)
        self.steps: list[dict[str, Any]] = []
        self.answered_by = ""
        self.throttled = 0  # 429 answers sat out
        self.waited_s = 0.0  # seconds waited for the shared rate limit

    # The record ---------------------------------------------------------------

    def details(self, **extra: Any) -> dict[str, Any]:
        """Every step so far and the totals: model, tokens, cost, latency."""
        prompt_tokens = completion_tokens = 0
        known = True
        cost: float | None = 0.0
        latency = 0.0
        for step in self.steps:
            usage = step["usage"]
            if usage["prompt_tokens"] is None or usage["completion_tokens"] is None:
                known = False
            prompt_tokens += usage["prompt_tokens"] or 0
            completion_tokens += usage["completion_tokens"] or 0
            cost = None if cost is None or step["cost_usd"] is None else cost + step["cost_usd"]
            latency += step["latency_ms"]
        return {
            "model": self.answered_by or self.model,
            "structured_output": self.base_url not in NO_STRUCTURED_OUTPUT,
            "steps": self.steps,
            "usage": {
                "prompt_tokens": prompt_tokens if known else None,
                "completion_tokens": completion_tokens if known else None,
                "total_tokens": prompt_tokens + completion_tokens if known else None,
            },
            "cost_usd": None if cost is None or not self.steps else round(cost, 8),
            "latency_ms": round(latency, 1),
            # Only when it happened: answers 429 sat out, seconds waited for the rate limit.
            **({"throttled": self.throttled} if self.throttled else {}),
            **({"rate_limit_wait_s": round(self.waited_s, 3)} if self.waited_s else {}),
            **extra,
        }

    def fail(self, message: str, **extra: Any) -> ScorerFailure:
        return ScorerFailure(message, details=self.details(**extra))

    # The calls ----------------------------------------------------------------

    def ask(
        self,
        name: str,
        prompt: str,
        schema: type[Schema],
        *,
        check=None,
    ) -> Schema:
        """Ask one step's question and return its validated answer.

        ``check(parsed)`` may return a problem the schema cannot see (too few
        verdicts…), which is repaired like a malformed answer.
        """
        step: dict[str, Any] = {
            "name": name,
            "prompt": prompt,
            "raw_answer": "",
            "parsed": None,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            "cost_usd": 0.0,
            "latency_ms": 0.0,
            "calls": 0,
        }
        self.steps.append(step)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        raw = self._complete(step, messages, schema)
        try:
            return self._accept(step, raw, schema, check)
        except ValueError as error:
            step["malformed_answer"], step["malformed_error"] = raw, str(error)
        repair = REPAIR.format(error=step["malformed_error"])
        step["repair_prompt"] = repair
        messages += [{"role": "assistant", "content": raw}, {"role": "user", "content": repair}]
        raw = self._complete(step, messages, schema)
        try:
            return self._accept(step, raw, schema, check)
        except ValueError as error:
            step["error"] = str(error)
            raise self.fail(
                f"The judge's answer to the {name} step could not be used, even after a "
                f"repair request: {error}. Its answer: {raw[:200]!r}",
                failed_raw_answer=raw,
            ) from None

    def _accept(self, step: dict[str, Any], raw: str, schema: type[Schema], check) -> Schema:
        step["raw_answer"] = raw
        parsed = parse_answer(raw, schema)
        problem = check(parsed) if check else None
        if problem:
            raise ValueError(problem)
        step["parsed"] = parsed.model_dump(mode="json")
        return parsed

    def _complete(self, step: dict[str, Any], messages: list[dict], schema: type[BaseModel]) -> str:
        """One chat call (with its retries) for ``step``; its tokens, cost and time recorded."""
        structured = self.base_url not in NO_STRUCTURED_OUTPUT
        started = time.perf_counter()
        try:
            try:
                completion = self._create(messages, schema if structured else None)
            except (openai.BadRequestError, openai.UnprocessableEntityError):
                # Refused, perhaps for the JSON schema: ask in plain JSON. If that is
                # answered, the schema was the trouble: plain JSON from now on.
                structured = False
                completion = self._create(messages, None)
                NO_STRUCTURED_OUTPUT.add(self.base_url)
        finally:
            step["latency_ms"] = round(
                step["latency_ms"] + (time.perf_counter() - started) * 1000, 1
            )
        step["calls"] += 1
        step["structured_output"] = structured
        choices = completion.choices or []
        raw = (choices[0].message.content or "") if choices else ""
        model = completion.model or self.model
        self.answered_by = model
        usage = completion.usage
        prompt_tokens = usage.prompt_tokens if usage else None
        completion_tokens = usage.completion_tokens if usage else None
        cost = cost_usd(model, prompt_tokens, completion_tokens)
        if cost is None and model != self.model:
            cost = cost_usd(self.model, prompt_tokens, completion_tokens)
        for key, value in (
            ("prompt_tokens", prompt_tokens),
            ("completion_tokens", completion_tokens),
        ):
            step["usage"][key] = (
                None if value is None or step["usage"][key] is None else step["usage"][key] + value
            )
        step["cost_usd"] = (
            None if cost is None or step["cost_usd"] is None else round(step["cost_usd"] + cost, 8)
        )
        return raw

    def _create(self, messages: list[dict], schema: type[BaseModel] | None):
        """The chat call with our retries, each attempt sized to the time left."""
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.__name__,
                    "schema": strict_json_schema(schema),
                    "strict": True,
                },
            }
        retries = settings.TRACESCORE_JUDGE_MAX_RETRIES
        base_url = self.base_url
        bucket = limits.judge_bucket(base_url)
        estimate = estimated_tokens(messages)
        failures = throttled = 0
        while True:
            timeout = settings.TRACESCORE_JUDGE_TIMEOUT
            left = time_left()
            if left is not None and left < SHORTEST_CALL:
                raise self.fail(
                    f"The scorer's time limit ran out before the judge at {base_url} answered."
                )
            headers = None
            try:
                if bucket is not None:
                    self.waited_s += limits.wait_for_share(
                        bucket, estimate, time_left, SHORTEST_CALL
                    )
                with limits.call_slot(time_left, SHORTEST_CALL):
                    left = time_left()
                    if left is not None:
                        timeout = min(timeout, left)
                    # The client's plain POST: ``chat.completions.create`` would convert
                    # the messages and schema through its typed parameters first, which
                    # costs more CPU than the rest of the call when many run at once.
                    completion = self.client.post(
                        "/chat/completions",
                        body={"model": self.model, "temperature": 0, "messages": messages, **extra},
                        cast_to=ChatCompletion,
                        options={"timeout": timeout},
                    )
                usage = completion.usage
                if bucket is not None and usage is not None and usage.total_tokens:
                    limits.charge(bucket, usage.total_tokens - estimate)
                return completion
            except limits.LimitTimeout as caught:
                raise ScorerThrottled(
                    f"Not judged in time: {caught}.", details=self.details()
                ) from None
            except openai.APITimeoutError:
                error = self.fail(f"The judge at {base_url} did not answer within {timeout:.3g} s.")
            except openai.APIConnectionError as caught:
                error = self.fail(f"Could not reach the judge at {base_url}: {caught}")
            except openai.APIStatusError as caught:
                if caught.status_code in (400, 422) and schema is not None:
                    raise  # maybe the response_format: the caller tries without it
                message = (
                    f"The judge at {base_url} answered HTTP {caught.status_code}: "
                    f"{str(caught.message)[:200]}"
                )
                headers = caught.response.headers
                if caught.status_code == THROTTLED:
                    throttled += 1
                    self.throttled += 1
                    delay = retry_delay(throttled - 1, headers)
                    left = time_left()
                    if left is None and throttled > MAX_THROTTLED_WITHOUT_DEADLINE:
                        raise self.fail(message) from None
                    if left is not None and delay + SHORTEST_CALL >= left:
                        raise ScorerThrottled(
                            f"{message}, and was still rate limiting when the scorer's time "
                            f"limit ran out ({throttled} answers 429).",
                            details=self.details(),
                        ) from None
                    time.sleep(delay)
                    continue
                error = self.fail(message)
                if caught.status_code not in RETRY_STATUSES and caught.status_code < 500:
                    raise error from None
            delay = retry_delay(failures, headers)
            left = time_left()
            if failures == retries or (left is not None and delay + SHORTEST_CALL >= left):
                raise error
            failures += 1
            time.sleep(delay)


# --- text for prompts --------------------------------------------------------


def plain_text(value: Any, indent: str = "") -> str:
    """A stored value as a person would read it: strings as they are (JSON text
    decoded first), objects as ``key: value`` lines, lists as ``- item`` lines."""
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in "{[" and stripped[-1:] in "}]":
            try:
                return plain_text(json.loads(stripped), indent)
            except ValueError:
                return value
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{indent}{key}:")
                lines.append(plain_text(item, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {plain_text(item, indent + '  ')}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{indent}-")
                lines.append(plain_text(item, indent + "  "))
            else:
                lines.append(f"{indent}- {plain_text(item, indent + '  ')}")
    else:
        return str(value)
    return "\n".join(lines)


def numbered(items: list[str]) -> str:
    return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1)) or "(none)"


def quoted(items: list[str], limit: int = 3) -> str:
    """Items for a reason: quoted, the first few, and how many more."""
    shown = "; ".join(f"“{item[:120]}”" for item in items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more" if more > 0 else "")
