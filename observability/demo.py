"""Demo traces: realistic agent and workflow runs, the same ones for the same seed.

``generate(traces, seed)`` yields ``SpanRecord`` values (all spans of one trace
together) without touching the database, so tests and benchmarks can reuse
it; ``store_demo_traces`` feeds them to ``observability.services.ingest_spans``
in batches.

What is in there:

- agent runs (``agent_run`` root with ``llm_generation`` and ``tool_call``
  children): a customer-support agent for an outdoor-gear shop, a research
  assistant and a docs assistant. The root's input is the user's question and
  its output the final answer; LLM spans carry system/user/tool messages in and
  the assistant message out, with model and token counts; tool spans carry the
  arguments in and the result out. Some roots carry
  ``attributes["metadata"] = {"expected_output": …, "expected_tools": […]}``
  for scorers that compare against expectations.
- workflow runs (``workflow_run`` root with ``workflow_step`` children, some
  with an LLM or embedding call inside a step).
- a few slow runs, a few failing ones (a tool or step with status error and a
  message), a rare long research run with up to ~200 spans, all spread over
  the seven days before ``now``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from django.utils import timezone

from observability.records import SpanRecord

SPREAD = timedelta(days=7)
MS = timedelta(milliseconds=1)

# Shares of the trace kinds; the rest are workflow runs.
SUPPORT_SHARE = 0.45
RESEARCH_SHARE = 0.12
DOCS_SHARE = 0.10
LONG_RESEARCH_SHARE = 0.004
SLOW_SHARE = 0.05
FAILING_SHARE = 0.08
EXPECTATIONS_SHARE = 0.4


# --- vocabulary ---------------------------------------------------------------------------

FIRST_NAMES = [
    "Maya", "Jonas", "Priya", "Lucas", "Amara", "Kenji", "Sofia", "Omar", "Elena", "Tomás",
    "Grace", "Ravi", "Chloé", "Noah", "Ingrid", "Mateo", "Aisha", "Felix", "Hana", "Diego",
]  # fmt: skip
LAST_NAMES = [
    "Okafor", "Lindqvist", "Sharma", "Moreau", "Tanaka", "García", "Nowak", "Haddad",
    "Keller", "Silva", "Brennan", "Kowalski", "Nguyen", "Fischer", "Rossi", "Adeyemi",
]  # fmt: skip
PRODUCTS = [
    ("Trailblazer 40L backpack", "BP-40-TRL", 149.00),
    ("Merino base layer crew", "ML-CRW-200", 79.00),
    ("Summit 800-fill down jacket", "DJ-SUM-800", 289.00),
    ("Ridgeline trail running shoes", "SH-RDG-TR", 135.00),
    ("Alpine 2-person tent", "TN-ALP-2P", 349.00),
    ("Cascade rain shell", "RS-CSC-01", 189.00),
    ("Basecamp insulated bottle 1L", "BT-BSC-1L", 34.00),
    ("Granite climbing harness", "CH-GRN-02", 95.00),
    ("Tundra sleeping bag -10°C", "SB-TUN-10", 259.00),
    ("Switchback trekking poles", "TP-SWB-AL", 89.00),
]
SIZES = ["XS", "S", "M", "L", "XL", "EU 42", "EU 44", "US 9", "US 10.5"]
COLORS = ["slate blue", "forest green", "charcoal", "ember orange", "sand"]
CARRIERS = [("UPS", "1Z{:016d}"), ("DHL", "JD{:018d}"), ("FedEx", "{:012d}")]
CITIES = [
    ("14 Harbour Street", "Bristol", "BS1 4RN", "UK"),
    ("221 Maple Avenue", "Portland", "OR 97205", "US"),
    ("Kastanienallee 8", "Berlin", "10435", "DE"),
    ("5 Rue des Lilas", "Lyon", "69003", "FR"),
    ("78 King Street West", "Toronto", "ON M5H 1J8", "CA"),
]
PLANS = [("Trail Club", 9.99), ("Trail Club Plus", 19.99), ("Expedition", 39.00)]

SUPPORT_SYSTEM = (
    "You are Juniper, the customer-support agent of Northwind Outfitters, an online shop for "
    "outdoor gear. Be concise and friendly. Always look orders and customers up with the tools "
    "before answering; never invent order details, dates or amounts. Refunds: items may be "
    "returned within 30 days of delivery; damaged items are refunded in full without a return. "
    "Escalate to a human when the customer asks for one or is very upset."
)
RESEARCH_SYSTEM = (
    "You are a research assistant. Search the web and read sources before answering. Cite "
    "every claim with the URL it comes from, prefer primary sources, and say so plainly when "
    "the sources disagree or are missing."
)
DOCS_SYSTEM = (
    "You answer questions about the Northwind Outfitters internal handbook. Use "
    "search_knowledge_base and answer only from the articles it returns; if they do not "
    "cover the question, say that you do not know and name the team to ask."
)

RESEARCH_TOPICS = [
    (
        "PostgreSQL logical replication",
        "Debezium change data capture",
        "streaming order events to a data warehouse",
    ),
    ("SQLite in WAL mode", "PostgreSQL", "a single-server internal tool with ~20 users"),
    ("gRPC", "REST over HTTP/JSON", "service-to-service calls between Python microservices"),
    ("Redis Streams", "RabbitMQ", "a background job queue handling 2,000 jobs per minute"),
    ("vector search in pgvector", "a dedicated vector database", "10 million product embeddings"),
    ("OpenTelemetry auto-instrumentation", "manual spans", "tracing an LLM agent in production"),
]
HANDBOOK = [
    (
        "How many days of parental leave do we get?",
        "HR-112 Parental leave",
        "Employees get 20 weeks of fully paid parental leave, taken within 12 months of birth "
        "or adoption, in up to three blocks.",
        "You get 20 weeks of fully paid parental leave, to be taken within 12 months of the "
        "birth or adoption, in up to three blocks (HR-112).",
    ),
    (
        "What is the expense limit for client dinners?",
        "FIN-031 Travel and expenses",
        "Client meals are reimbursed up to 85 EUR per person including tips; alcohol only with "
        "a client present; receipts must be uploaded within 30 days.",
        "Client dinners are covered up to 85 EUR per person including tip, with receipts "
        "uploaded within 30 days (FIN-031).",
    ),
    (
        "Who approves a new SaaS tool purchase?",
        "IT-207 Buying software",
        "Tools under 2,000 EUR a year are approved by the team lead; above that, by IT security "
        "and finance after a vendor review.",
        "Your team lead approves tools under 2,000 EUR a year; above that IT security and "
        "finance approve after a vendor review (IT-207).",
    ),
    (
        "Can I work from abroad for a month?",
        "HR-140 Remote work",
        "Working from another country is allowed for up to 30 days a year after approval by your "
        "manager and People Ops, who check tax and visa rules.",
        "Yes, up to 30 days a year, with approval from your manager and People Ops (HR-140).",
    ),
]
TICKET_SUBJECTS = [
    ("Zipper broke after two hikes", "product_defect", "returns", "high"),
    ("Charged twice for order", "billing", "payments", "urgent"),
    ("Which tent for winter camping?", "pre_sales", "sales", "normal"),
    ("Parcel marked delivered but not here", "shipping", "logistics", "high"),
    ("Change my email address", "account", "support", "low"),
    ("Wholesale pricing for our hiking club", "b2b", "sales", "normal"),
]
VENDORS = ["Alpenstoff GmbH", "Pacific Textile Co.", "Nordic Buckle AB", "Sierra Foam Ltd."]


# --- one trace -------------------------------------------------------------------------------


@dataclass
class _Call:
    tool: str
    arguments: dict[str, Any]
    result: Any
    error: str = ""  # set when this call fails in a failing run
    duration_ms: float = 0


@dataclass
class _Script:
    """What one agent run does: the question, tool calls in order, the answer."""

    agent: str
    service: str
    system: str
    model: str
    question: str
    calls: list[_Call]
    answer: str
    expected_output: str = ""
    expected_tools: list[str] = field(default_factory=list)
    failure_answer: str = "Sorry, something went wrong on our side. Please try again shortly."


class _Builder:
    """Lays the spans of one trace out in time, one after the other."""

    def __init__(self, rng: random.Random, start: datetime, resource: dict[str, Any]):
        self.rng = rng
        self.trace_id = f"{rng.getrandbits(128):032x}"
        self.clock = start
        self.resource = resource
        self.spans: list[SpanRecord] = []

    def span(
        self,
        *,
        parent: SpanRecord | None,
        name: str,
        span_type: str,
        duration_ms: float,
        gap_ms: float | None = None,
        **fields: Any,
    ) -> SpanRecord:
        gap = self.rng.uniform(2, 25) if gap_ms is None else gap_ms
        started = self.clock + gap * MS
        record = SpanRecord(
            trace_id=self.trace_id,
            span_id=f"{self.rng.getrandbits(64) | 1:016x}",
            parent_span_id=parent.span_id if parent else None,
            name=name,
            span_type=span_type,
            status=fields.pop("status", "ok"),
            started_at=started,
            ended_at=started + round(duration_ms, 3) * MS,
            resource=self.resource,
            **fields,
        )
        self.clock = record.ended_at
        self.spans.append(record)
        return record

    def open(self, *, name: str, span_type: str, **fields: Any) -> SpanRecord:
        """A parent span whose end is set by ``close`` once its children are laid out."""
        record = self.span(parent=None, name=name, span_type=span_type, duration_ms=0, **fields)
        self.clock = record.started_at
        return record

    def close(self, record: SpanRecord) -> None:
        self.clock += self.rng.uniform(1, 15) * MS
        record.ended_at = self.clock

    def nest(self, *, parent: SpanRecord, name: str, span_type: str, **fields: Any) -> SpanRecord:
        record = self.open(name=name, span_type=span_type, **fields)
        record.parent_span_id = parent.span_id
        return record

    def llm(
        self,
        *,
        parent: SpanRecord,
        model: str,
        messages: list[dict[str, Any]],
        reply: str,
        tool_calls: list[dict[str, Any]] | None = None,
        slow: bool = False,
        temperature: float = 0.2,
    ) -> SpanRecord:
        rng = self.rng
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        input_tokens = prompt_chars // 4 + rng.randint(8, 40)
        output_tokens = len(reply) // 4 + (
            rng.randint(18, 45) if tool_calls else rng.randint(2, 12)
        )
        duration = 280 + input_tokens * rng.uniform(0.05, 0.2) + output_tokens * rng.uniform(9, 22)
        if slow:
            duration *= rng.uniform(6, 14)
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return self.span(
            parent=parent,
            name=f"chat {model}",
            span_type="llm_generation",
            duration_ms=duration,
            input=messages,
            output=[message],
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.system": _provider(model),
                "gen_ai.request.model": model,
                "gen_ai.request.temperature": temperature,
                "gen_ai.response.finish_reasons": ["tool_calls" if tool_calls else "stop"],
            },
        )


def _provider(model: str) -> str:
    if model.startswith("claude"):
        return "anthropic"
    if model.startswith(("llama", "mistral")):
        return "vllm"
    return "openai"


def _exception(error: str, at: datetime) -> list[dict[str, Any]]:
    kind, _, message = error.partition(": ")
    return [
        {
            "name": "exception",
            "time": at.isoformat(),
            "attributes": {"exception.type": kind, "exception.message": message or kind},
        }
    ]


def _window(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """System prompt, question and the latest turns: long runs trim their context."""
    return messages if len(messages) <= 10 else [*messages[:2], *messages[-8:]]


def _run_agent(b: _Builder, script: _Script, *, failing: bool, slow: bool) -> None:
    rng = b.rng
    attributes: dict[str, Any] = {
        "session.id": f"sess_{rng.getrandbits(48):012x}",
        "user.id": f"usr_{rng.randint(1000, 99999)}",
        "agent.name": script.agent,
    }
    if script.expected_output or script.expected_tools:
        attributes["metadata"] = {
            key: value
            for key, value in (
                ("expected_output", script.expected_output),
                ("expected_tools", script.expected_tools),
            )
            if value
        }
    root = b.open(name=script.agent, span_type="agent_run", input=script.question)
    root.attributes = attributes
    # The failing call, if any: the agent may still answer (an apology) or stop.
    can_fail = [i for i, call in enumerate(script.calls) if call.error]
    failing_at = rng.choice(can_fail) if failing and can_fail else None
    slow_at = rng.randrange(len(script.calls) + 1) if slow else None
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": script.system},
        {"role": "user", "content": script.question},
    ]
    for index, call in enumerate(script.calls):
        call_id = f"call_{rng.getrandbits(40):010x}"
        request = {"id": call_id, "name": call.tool, "arguments": call.arguments}
        b.llm(
            parent=root,
            model=script.model,
            messages=_window(messages),
            reply="",
            tool_calls=[request],
            slow=slow_at == index,
        )
        fails = index == failing_at
        duration = call.duration_ms or rng.uniform(40, 650)
        if fails and "Timeout" in call.error:
            duration = 10_000 + rng.uniform(0, 40)
        tool = b.span(
            parent=root,
            name=call.tool,
            span_type="tool_call",
            duration_ms=duration,
            input=call.arguments,
            output=None if fails else call.result,
            attributes={"tool.name": call.tool, "gen_ai.tool.call.id": call_id},
            status="error" if fails else "ok",
            error_message=call.error if fails else "",
        )
        if fails:
            tool.events = _exception(call.error, tool.ended_at)
            if rng.random() < 0.5:
                root.status = "error"
                root.error_message = f"Agent stopped: tool {call.tool} failed ({call.error})"
                root.events = _exception(root.error_message, tool.ended_at)
                b.close(root)
                return
            result_text = json.dumps({"error": call.error})
        else:
            result_text = json.dumps(call.result)
        messages = [
            *messages,
            {"role": "assistant", "content": "", "tool_calls": [request]},
            {"role": "tool", "tool_call_id": call_id, "content": result_text},
        ]
        if fails:
            answer = script.failure_answer
            break
    else:
        answer = script.answer
    b.llm(
        parent=root,
        model=script.model,
        messages=_window(messages),
        reply=answer,
        slow=slow_at == len(script.calls),
    )
    root.output = answer
    b.close(root)


# --- agent scripts ------------------------------------------------------------------------


def _customer(rng: random.Random) -> tuple[str, str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first.lower()}.{last.lower()}@example.com".replace("é", "e").replace("á", "a")
    return first, f"{first} {last}", email


def _day(at: datetime, days: int) -> str:
    day = at + timedelta(days=days)
    return f"{day:%A} {day.day} {day:%B}"


def _order_status(rng: random.Random, at: datetime) -> _Script:
    order = str(rng.randint(10000, 99999))
    product, sku, price = rng.choice(PRODUCTS)
    carrier, pattern = rng.choice(CARRIERS)
    tracking = pattern.format(rng.getrandbits(40))
    eta = _day(at, rng.randint(1, 4))
    shipped = _day(at, -rng.randint(1, 3))
    question = rng.choice(
        [
            f"Hi, where is my order #{order}? I ordered the {product} last week.",
            f"Order {order} still hasn't arrived, can you check what's going on?",
            f"When will my order #{order} be delivered? I need the {product} for a trip.",
        ]
    )
    answers = [
        f"Your order #{order} shipped on {shipped} with {carrier} (tracking {tracking}) and "
        f"should arrive by {eta}.",
        f"Good news: order #{order} ({product}) is on its way with {carrier}. Tracking number "
        f"{tracking}; the expected delivery is {eta}.",
        f"Order #{order} left our warehouse on {shipped}. {carrier} expects to deliver it by "
        f"{eta} — you can follow it with tracking number {tracking}.",
    ]
    return _Script(
        agent="support-agent",
        service="shop-support",
        system=SUPPORT_SYSTEM,
        model=rng.choice(["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]),
        question=question,
        calls=[
            _Call(
                "lookup_order",
                {"order_id": order},
                {
                    "order_id": order,
                    "status": "shipped",
                    "items": [{"sku": sku, "name": product, "quantity": 1, "price": price}],
                    "carrier": carrier,
                    "tracking_number": tracking,
                    "shipped_on": shipped,
                    "estimated_delivery": eta,
                },
                error=rng.choice(
                    [
                        "TimeoutError: orders-api did not answer within 10s",
                        "ConnectionError: orders-api.internal:443 connection reset by peer",
                    ]
                ),
            )
        ],
        answer=rng.choice(answers),
        expected_output=answers[0],
        expected_tools=["lookup_order"],
    )


def _refund(rng: random.Random, at: datetime) -> _Script:
    order = str(rng.randint(10000, 99999))
    product, sku, price = rng.choice(PRODUCTS)
    first, _, _ = _customer(rng)
    damage = rng.choice(
        ["the seam is torn", "it arrived with a broken buckle", "the zipper is broken"]
    )
    refund_id = f"re_{rng.getrandbits(48):012x}"
    question = (
        f"Hi, I'm {first}. The {product} from order #{order} arrived damaged — {damage}. "
        "Can I get my money back?"
    )
    answer = (
        f"I'm sorry the {product} arrived damaged, {first}. I've refunded the full "
        f"{price:.2f} EUR to your original payment method (refund {refund_id}); it shows up in "
        "3–5 business days. There's no need to send the item back."
    )
    calls = [
        _Call(
            "lookup_order",
            {"order_id": order},
            {
                "order_id": order,
                "status": "delivered",
                "delivered_on": _day(at, -rng.randint(2, 12)),
                "items": [{"sku": sku, "name": product, "quantity": 1, "price": price}],
                "payment_method": "visa •••• " + str(rng.randint(1000, 9999)),
            },
            error="TimeoutError: orders-api did not answer within 10s",
        ),
        _Call(
            "create_refund",
            {"order_id": order, "amount": price, "reason": "damaged_item", "note": damage},
            {"refund_id": refund_id, "status": "approved", "amount": price, "currency": "EUR"},
            error="PaymentsError: payments-gateway answered 503 Service Unavailable",
        ),
    ]
    return _Script(
        agent="support-agent",
        service="shop-support",
        system=SUPPORT_SYSTEM,
        model=rng.choice(["gpt-4o-mini", "gpt-4o"]),
        question=question,
        calls=calls,
        answer=answer,
        expected_output=(
            f"Full refund of {price:.2f} EUR for the damaged {product} in order #{order}, "
            "no return needed, 3-5 business days."
        ),
        expected_tools=["lookup_order", "create_refund"],
    )


def _change_address(rng: random.Random, at: datetime) -> _Script:
    order = str(rng.randint(10000, 99999))
    street, city, postcode, country = rng.choice(CITIES)
    address = {"street": street, "city": city, "postcode": postcode, "country": country}
    question = (
        f"Can you send order #{order} to {street}, {city} {postcode} instead? I moved last week."
    )
    answer = (
        f"Done! Order #{order} hasn't shipped yet, so I've changed its delivery address to "
        f"{street}, {city} {postcode}. You'll get a confirmation email in a few minutes."
    )
    return _Script(
        agent="support-agent",
        service="shop-support",
        system=SUPPORT_SYSTEM,
        model="gpt-4o-mini",
        question=question,
        calls=[
            _Call(
                "lookup_order",
                {"order_id": order},
                {"order_id": order, "status": "processing", "ships_on": _day(at, 1)},
                error="TimeoutError: orders-api did not answer within 10s",
            ),
            _Call(
                "update_shipping_address",
                {"order_id": order, "address": address},
                {"order_id": order, "updated": True, "address": address},
                error="ValidationError: postcode does not match the city for country " + country,
            ),
        ],
        answer=answer,
        expected_output=f"The delivery address of order #{order} was changed to {street}, "
        f"{city} {postcode}.",
        expected_tools=["lookup_order", "update_shipping_address"],
    )


def _stock(rng: random.Random, at: datetime) -> _Script:
    product, sku, price = rng.choice(PRODUCTS)
    size, color = rng.choice(SIZES), rng.choice(COLORS)
    count = rng.choice([0, 0, 2, 5, 14, 31])
    question = f"Do you have the {product} in {size}, {color}?"
    if count:
        answer = (
            f"Yes — we have {count} of the {product} in {size} ({color}) in stock at "
            f"{price:.2f} EUR. Order today and it ships tomorrow."
        )
    else:
        answer = (
            f"The {product} in {size} ({color}) is sold out right now. It's back in stock "
            f"around {_day(at, rng.randint(7, 21))}; I can notify you by email when it arrives."
        )
    return _Script(
        agent="support-agent",
        service="shop-support",
        system=SUPPORT_SYSTEM,
        model="gpt-4o-mini",
        question=question,
        calls=[
            _Call(
                "check_inventory",
                {"sku": sku, "size": size, "color": color},
                {"sku": sku, "size": size, "color": color, "in_stock": count, "price": price},
                error="TimeoutError: inventory-service did not answer within 10s",
            )
        ],
        answer=answer,
        expected_output=answer,
        expected_tools=["check_inventory"],
    )


def _cancel_subscription(rng: random.Random, at: datetime) -> _Script:
    first, full, email = _customer(rng)
    plan, fee = rng.choice(PLANS)
    customer_id = f"cus_{rng.getrandbits(40):010x}"
    until = _day(at, rng.randint(3, 27))
    question = f"Please cancel my {plan} membership. My account email is {email}."
    answer = (
        f"I've cancelled your {plan} membership, {first}. You keep its benefits until {until} "
        f"and won't be charged the {fee:.2f} EUR monthly fee again."
    )
    return _Script(
        agent="support-agent",
        service="shop-support",
        system=SUPPORT_SYSTEM,
        model="gpt-4o-mini",
        question=question,
        calls=[
            _Call(
                "get_customer",
                {"email": email},
                {"customer_id": customer_id, "name": full, "plan": plan, "renews_on": until},
                error="TimeoutError: crm-api did not answer within 10s",
            ),
            _Call(
                "cancel_subscription",
                {"customer_id": customer_id, "at_period_end": True},
                {"cancelled": True, "effective_on": until},
                error="BillingError: subscription is locked by a pending invoice",
            ),
        ],
        answer=answer,
        expected_output=answer,
        expected_tools=["get_customer", "cancel_subscription"],
    )


def _escalation(rng: random.Random, at: datetime) -> _Script:
    first, _, email = _customer(rng)
    order = str(rng.randint(10000, 99999))
    question = rng.choice(
        [
            f"This is the third time I'm writing about order {order}. I want to talk to a "
            "real person NOW.",
            f"Your courier left my parcel (order {order}) in the rain and everything is soaked. "
            "Unacceptable. Get me a manager.",
        ]
    )
    ticket = f"HUM-{rng.randint(10000, 99999)}"
    answer = (
        f"I'm really sorry, {first}. I've passed this to our support team as urgent "
        f"(ticket {ticket}); a person will email you at {email} within 2 hours."
    )
    return _Script(
        agent="support-agent",
        service="shop-support",
        system=SUPPORT_SYSTEM,
        model="gpt-4o",
        question=question,
        calls=[
            _Call(
                "escalate_to_human",
                {"order_id": order, "priority": "urgent", "summary": question[:120]},
                {"ticket_id": ticket, "queue": "tier-2", "first_response_within": "2h"},
                error="HTTPError: helpdesk answered 502 Bad Gateway",
            )
        ],
        answer=answer,
        expected_tools=["escalate_to_human"],
    )


SUPPORT_SCRIPTS: list[Callable[[random.Random, datetime], _Script]] = [
    _order_status,
    _order_status,
    _refund,
    _change_address,
    _stock,
    _cancel_subscription,
    _escalation,
]


def _research(rng: random.Random, at: datetime, *, rounds: int = 0) -> _Script:
    a, b, use = rng.choice(RESEARCH_TOPICS)
    question = rng.choice(
        [
            f"Should we use {a} or {b} for {use}? Give me the trade-offs with sources.",
            f"Compare {a} with {b} for {use}.",
        ]
    )
    slug_a, slug_b = a.lower().replace(" ", "-"), b.lower().replace(" ", "-")
    sources = [
        f"https://docs.example.org/{slug_a}/overview",
        f"https://engineering.example.com/blog/{slug_a}-vs-{slug_b}",
        f"https://www.example.net/benchmarks/{slug_b}",
    ]
    calls = [
        _Call(
            "web_search",
            {"query": f"{a} vs {b} {use}", "max_results": 5},
            [
                {"title": f"{a}: overview and limits", "url": sources[0]},
                {"title": f"Why we moved from {b} to {a}", "url": sources[1]},
                {"title": f"{b} benchmarks 2026", "url": sources[2]},
            ],
            error="RateLimitError: search API answered 429 Too Many Requests",
        ),
    ]
    pages = rounds or 2
    for index in range(pages):
        url = sources[index % len(sources)]
        if index >= len(sources):
            url = f"{url}?page={index // len(sources) + 1}"
        calls.append(
            _Call(
                "fetch_page",
                {"url": url},
                {
                    "url": url,
                    "status": 200,
                    "text": (
                        f"{a if index % 2 == 0 else b} handles {use} with "
                        f"{rng.choice(['low', 'moderate', 'high'])} operational overhead. "
                        f"Teams report {rng.randint(2, 40)}x lower latency in the cases measured, "
                        "but recovery after failures needs careful configuration. "
                    )
                    * rng.randint(2, 6),
                },
                error=f"HTTPError: 403 Forbidden for {url}",
                duration_ms=rng.uniform(300, 2200),
            )
        )
    answer = (
        f"For {use}, {a} is the simpler choice if you already run it: fewer moving parts and "
        f"good enough throughput ({sources[0]}). {b} wins when you need its ecosystem or strict "
        f"ordering guarantees, at the cost of one more system to operate ({sources[1]}). "
        f"Benchmarks differ by workload, so measure with your own data ({sources[2]})."
    )
    return _Script(
        agent="deep-research-agent" if rounds else "research-agent",
        service="research-assistant",
        system=RESEARCH_SYSTEM,
        model=rng.choice(["claude-3-5-sonnet", "gpt-4o", "llama-3.1-70b-instruct"]),
        question=question,
        calls=calls,
        answer=answer,
        expected_tools=["web_search", "fetch_page"],
        failure_answer="I could not reach enough sources to answer reliably; please try again.",
    )


def _docs(rng: random.Random, at: datetime) -> _Script:
    question, article, text, answer = rng.choice(HANDBOOK)
    return _Script(
        agent="docs-assistant",
        service="handbook-bot",
        system=DOCS_SYSTEM,
        model=rng.choice(["gpt-4o-mini", "mistral-small-2409"]),
        question=question,
        calls=[
            _Call(
                "search_knowledge_base",
                {"query": question, "top_k": 3},
                [
                    {"article": article, "score": round(rng.uniform(0.78, 0.95), 3), "text": text},
                    {
                        "article": "HR-001 Welcome to Northwind",
                        "score": round(rng.uniform(0.4, 0.6), 3),
                        "text": "Where to find policies, who to ask, and how we work.",
                    },
                ],
                error="ConnectionError: vector store at qdrant.internal:6333 refused connection",
            )
        ],
        answer=answer,
        expected_output=answer,
        expected_tools=["search_knowledge_base"],
    )


# --- workflow runs ---------------------------------------------------------------------------


@dataclass
class _Step:
    name: str
    input: Any
    output: Any
    duration: tuple[float, float]
    error: str = ""
    inner: Callable[[_Builder, SpanRecord], None] | None = None


def _inner_llm(model: str, system: str, prompt: str, reply: str):
    def add(b: _Builder, step: SpanRecord) -> None:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        b.llm(parent=step, model=model, messages=messages, reply=reply, temperature=0.0)

    return add


def _inner_embedding(chunks: int):
    def add(b: _Builder, step: SpanRecord) -> None:
        b.span(
            parent=step,
            name="embeddings text-embedding-3-small",
            span_type="embedding",
            duration_ms=b.rng.uniform(80, 400) + chunks * 3,
            input={"texts": chunks},
            output={"vectors": chunks, "dimensions": 1536},
            model="text-embedding-3-small",
            input_tokens=chunks * b.rng.randint(180, 260),
            attributes={"gen_ai.operation.name": "embeddings"},
        )

    return add


def _ticket_triage(rng: random.Random, at: datetime) -> tuple[str, str, Any, Any, list[_Step]]:
    subject, category, team, priority = rng.choice(TICKET_SUBJECTS)
    first, full, email = _customer(rng)
    ticket = f"T-{rng.randint(40000, 99999)}"
    body = f"Hello, {subject.lower()}. Order {rng.randint(10000, 99999)}. Thanks, {first}"
    system = "Classify support tickets. Answer with JSON: category, priority, language."
    classification = {"category": category, "priority": priority, "language": "en"}
    reply = (
        f"Hi {first}, thanks for reaching out about “{subject}”. Our {team} team has your "
        f"ticket {ticket} and will get back to you within one business day."
    )
    steps = [
        _Step(
            "classify_ticket",
            {"subject": subject, "body": body},
            classification,
            (20, 60),
            inner=_inner_llm(
                "gpt-4o-mini", system, f"{subject}\n\n{body}", json.dumps(classification)
            ),
        ),
        _Step(
            "lookup_customer",
            {"email": email},
            {"name": full, "lifetime_orders": rng.randint(1, 25), "vip": rng.random() < 0.15},
            (30, 200),
            error="TimeoutError: crm-api did not answer within 10s",
        ),
        _Step(
            "route_ticket",
            {"ticket_id": ticket, **classification},
            {"team": team, "queue": f"{team}-{priority}"},
            (5, 30),
            error=f"KeyError: no queue configured for team {team!r}",
        ),
        _Step(
            "draft_reply",
            {"ticket_id": ticket, "team": team},
            {"draft": reply},
            (10, 40),
            inner=_inner_llm(
                "gpt-4o", "Write a short, warm first reply to a customer.", body, reply
            ),
        ),
    ]
    return (
        "ticket-triage",
        "support-workflows",
        {"ticket_id": ticket, "subject": subject, "from": email},
        {"ticket_id": ticket, "team": team, "priority": priority, "draft_reply": reply},
        steps,
    )


def _invoice(rng: random.Random, at: datetime) -> tuple[str, str, Any, Any, list[_Step]]:
    vendor = rng.choice(VENDORS)
    invoice = f"INV-{at:%Y}-{rng.randint(1000, 9999)}"
    lines = [round(rng.uniform(120, 2400), 2) for _ in range(rng.randint(2, 6))]
    total = round(sum(lines), 2)
    fields_ = {"vendor": vendor, "invoice_number": invoice, "currency": "EUR", "total": total}
    steps = [
        _Step(
            "download_pdf",
            {"url": f"s3://northwind-invoices/{invoice}.pdf"},
            {"bytes": rng.randint(40_000, 900_000), "pages": rng.randint(1, 4)},
            (60, 400),
            error="ClientError: AccessDenied when calling GetObject",
        ),
        _Step(
            "extract_fields",
            {"invoice": invoice},
            {**fields_, "lines": lines},
            (20, 60),
            inner=_inner_llm(
                "gpt-4o",
                "Extract vendor, invoice number, currency, line amounts and total as JSON.",
                f"Invoice {invoice} from {vendor}: " + ", ".join(f"{x:.2f}" for x in lines),
                json.dumps({**fields_, "lines": lines}),
            ),
        ),
        _Step(
            "validate_totals",
            {"lines": lines, "total": total},
            {"valid": True},
            (2, 10),
            error=f"ValidationError: line items sum to {total:.2f} but the invoice total "
            f"says {total - 36:.2f}",
        ),
        _Step(
            "post_to_ledger",
            {"invoice": invoice, "amount": total, "account": "6100 Materials"},
            {"journal_entry": f"JE-{rng.randint(100000, 999999)}", "posted": True},
            (50, 300),
            error="ConnectionError: ledger-api.internal:443 connection refused",
        ),
    ]
    return (
        "invoice-processing",
        "finance-workflows",
        {"invoice": invoice, "vendor": vendor},
        {"invoice": invoice, "posted": True, "total": total},
        steps,
    )


def _nightly_report(rng: random.Random, at: datetime) -> tuple[str, str, Any, Any, list[_Step]]:
    day = (at - timedelta(days=1)).date().isoformat()
    orders = rng.randint(180, 1400)
    revenue = round(orders * rng.uniform(70, 160), 2)
    returns = round(rng.uniform(1.5, 7.5), 1)
    summary = (
        f"{day}: {orders} orders, {revenue:,.2f} EUR revenue, return rate {returns}%. "
        f"Top seller: {rng.choice(PRODUCTS)[0]}."
    )
    steps = [
        _Step(
            "fetch_metrics",
            {"date": day, "sources": ["orders", "returns", "traffic"]},
            {"orders": orders, "revenue": revenue, "return_rate": returns},
            (300, 2500),
            error="OperationalError: warehouse query canceled after 30s statement timeout",
        ),
        _Step(
            "write_summary",
            {"date": day},
            {"summary": summary},
            (10, 40),
            inner=_inner_llm(
                "claude-3-5-haiku",
                "Summarise yesterday's shop metrics in two sentences for the team channel.",
                json.dumps({"orders": orders, "revenue": revenue, "return_rate": returns}),
                summary,
            ),
        ),
        _Step(
            "send_report",
            {"channel": "#shop-daily", "recipients": 14},
            {"delivered": True},
            (80, 500),
            error="SMTPException: mail.internal:587 refused the connection",
        ),
    ]
    return "nightly-report", "reporting", {"date": day}, {"summary": summary}, steps


def _index_documents(rng: random.Random, at: datetime) -> tuple[str, str, Any, Any, list[_Step]]:
    source = rng.choice(["handbook", "product-manuals", "return-policies", "size-guides"])
    docs = rng.randint(3, 40)
    chunks = docs * rng.randint(4, 12)
    steps = [
        _Step(
            "list_changed_documents",
            {"source": source, "since": (at - timedelta(hours=6)).isoformat(timespec="seconds")},
            {"documents": docs},
            (40, 300),
        ),
        _Step(
            "chunk_documents",
            {"documents": docs, "chunk_size": 800, "overlap": 100},
            {"chunks": chunks},
            (20, 200),
        ),
        _Step(
            "embed_chunks",
            {"chunks": chunks},
            {"embedded": chunks},
            (10, 40),
            inner=_inner_embedding(chunks),
            error="RateLimitError: embeddings API answered 429 Too Many Requests",
        ),
        _Step(
            "upsert_vectors",
            {"collection": source, "vectors": chunks},
            {"upserted": chunks},
            (30, 400),
            error="ConnectionError: vector store at qdrant.internal:6333 refused connection",
        ),
    ]
    return (
        "index-documents",
        "knowledge-pipeline",
        {"source": source},
        {"documents": docs, "chunks": chunks},
        steps,
    )


WORKFLOWS = [_ticket_triage, _ticket_triage, _invoice, _nightly_report, _index_documents]


def _run_workflow(b: _Builder, make, at: datetime, *, failing: bool, slow: bool) -> None:
    rng = b.rng
    name, service, wf_input, wf_output, steps = make(rng, at)
    b.resource = {**b.resource, "service.name": service}
    root = b.open(name=name, span_type="workflow_run", input=wf_input)
    root.attributes = {"workflow.name": name, "workflow.run_id": f"run_{rng.getrandbits(48):012x}"}
    can_fail = [i for i, step in enumerate(steps) if step.error]
    failing_at = rng.choice(can_fail) if failing and can_fail else None
    slow_at = rng.randrange(len(steps)) if slow else None
    for index, step in enumerate(steps):
        fails = index == failing_at
        if step.inner:
            span = b.nest(parent=root, name=step.name, span_type="workflow_step", input=step.input)
            b.clock += rng.uniform(step.duration[0], step.duration[1]) * MS
            if not fails:
                step.inner(b, span)
            b.close(span)
            if index == slow_at:
                span.ended_at += rng.uniform(8_000, 45_000) * MS
                b.clock = span.ended_at
            span.output = None if fails else step.output
        else:
            duration = rng.uniform(*step.duration)
            if index == slow_at:
                duration += rng.uniform(8_000, 45_000)
            span = b.span(
                parent=root,
                name=step.name,
                span_type="workflow_step",
                duration_ms=duration,
                input=step.input,
                output=None if fails else step.output,
            )
        span.attributes = {"workflow.step": step.name, "workflow.step.index": index}
        if fails:
            span.status = "error"
            span.error_message = step.error
            span.events = _exception(step.error, span.ended_at)
            root.status = "error"
            root.error_message = f"Step {step.name} failed: {step.error}"
            b.close(root)
            return
    root.output = wf_output
    b.close(root)


# --- entry points ------------------------------------------------------------------------


def _one_trace(rng: random.Random, now: datetime) -> list[SpanRecord]:
    start = now - SPREAD + rng.random() * SPREAD
    # Leave room so even a slow run has ended by `now`.
    start = min(start, now - timedelta(minutes=5))
    b = _Builder(rng, start, {"deployment.environment": "production"})
    failing = rng.random() < FAILING_SHARE
    slow = rng.random() < SLOW_SHARE
    kind = rng.random()
    if kind < LONG_RESEARCH_SHARE:
        script = _research(rng, start, rounds=rng.randint(25, 95))
    elif kind < LONG_RESEARCH_SHARE + SUPPORT_SHARE:
        script = rng.choice(SUPPORT_SCRIPTS)(rng, start)
    elif kind < LONG_RESEARCH_SHARE + SUPPORT_SHARE + RESEARCH_SHARE:
        script = _research(rng, start)
    elif kind < LONG_RESEARCH_SHARE + SUPPORT_SHARE + RESEARCH_SHARE + DOCS_SHARE:
        script = _docs(rng, start)
    else:
        _run_workflow(b, rng.choice(WORKFLOWS), start, failing=failing, slow=slow)
        return b.spans
    if rng.random() >= EXPECTATIONS_SHARE:
        script.expected_output, script.expected_tools = "", []
    b.resource = {**b.resource, "service.name": script.service, "service.version": "2.3.1"}
    _run_agent(b, script, failing=failing, slow=slow)
    return b.spans


def generate_traces(
    traces: int, seed: int = 0, *, now: datetime | None = None
) -> Iterator[list[SpanRecord]]:
    """The spans of ``traces`` demo traces, one list per trace.

    The same ``seed`` and ``now`` give the same traces, ids included; ``now``
    (default: the current time) only moves them in time.
    """
    rng = random.Random(seed)
    now = now or timezone.now()
    for _ in range(traces):
        yield _one_trace(rng, now)


def generate(traces: int, seed: int = 0, *, now: datetime | None = None) -> Iterator[SpanRecord]:
    """The spans of ``traces`` demo traces, flat; all spans of one trace come together."""
    return chain.from_iterable(generate_traces(traces, seed, now=now))


def store_demo_traces(
    traces: int,
    seed: int = 0,
    *,
    now: datetime | None = None,
    batch_spans: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Generate demo traces and store them with ``ingest_spans``, whole traces per batch.

    Each batch is its own transaction. Storing the same seed again updates the
    same traces rather than adding new ones. Returns (traces, spans) stored;
    ``progress(traces_so_far, spans_so_far)`` is called after each batch.
    """
    from observability.services import ingest_spans, refresh_planner_statistics

    batch: list[SpanRecord] = []
    stored_traces = stored_spans = pending_traces = 0
    analyzed_at = batch_spans
    for spans in generate_traces(traces, seed, now=now):
        batch.extend(spans)
        pending_traces += 1
        if len(batch) >= batch_spans:
            stored_spans += ingest_spans(batch).accepted_spans
            stored_traces += pending_traces
            batch, pending_traces = [], 0
            # A bulk load outruns autovacuum: with statistics of an empty table the
            # planner turns each trace refresh into full scans. Refresh them as
            # the tables double in size.
            if stored_spans >= 2 * analyzed_at:
                refresh_planner_statistics()
                analyzed_at = stored_spans
            if progress:
                progress(stored_traces, stored_spans)
    if batch:
        stored_spans += ingest_spans(batch).accepted_spans
        stored_traces += pending_traces
        if progress:
            progress(stored_traces, stored_spans)
    return stored_traces, stored_spans
