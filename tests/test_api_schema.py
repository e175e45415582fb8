"""Every operation of the REST API, fuzzed from its own OpenAPI schema with schemathesis.

Schemathesis generates requests from the schema, valid and invalid ones, and
checks every answer: no server error, a documented status code and content
type, a body that matches the documented schema, valid input accepted and
invalid input refused. ``TRACESCORE_SCHEMA_EXAMPLES`` sets how many examples
each operation gets (default 15: about half a minute in all on two cores).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import pytest
import schemathesis
from django.conf import settings as django_settings
from django_q.brokers import get_broker
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from observability.ingest_views import MAX_BATCH_SPANS
from observability.pagination import InvalidCursor, TraceCursor
from observability.services import create_ingest_key
from scoring.models import ScoringBatch, ScoringRule
from tests.factories import agent_trace, make_score
from tracescore.wsgi import application

EXAMPLES = int(os.environ.get("TRACESCORE_SCHEMA_EXAMPLES", "15"))

# Ids the fixture seeds, given to schemathesis as the path parameters' examples so
# that some requests reach real rows (random ids only ever find nothing).
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
BATCH_ID = "6f1c2f9e-58a4-4d0e-9d47-3f0b6f3a2c11"
RULE_ID = 7
SEEDED = {
    "trace_id": TRACE_ID,
    "scorer_id": "completeness",
    "batch_id": BATCH_ID,
    "rule_id": RULE_ID,
}

# A 10,000-span batch takes seconds to generate, send and store, and the
# coverage phase sends the largest batch the schema allows several times; the
# fuzzer explores span shapes in smaller batches, and the 10,000 limit has its
# own test below.
FUZZED_SPANS_PER_BATCH = 20


def served_schema() -> dict:
    """The schema ``/api/schema/`` serves, built by its generator (no signed-in request needed)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


def fuzzed_schema() -> dict:
    document = served_schema()
    for path_item in document["paths"].values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in SEEDED:
                    parameter["example"] = SEEDED[parameter["name"]]
    batch = document["components"]["schemas"]["BatchRequestRequest"]
    batch["example"] = {"scorerId": "completeness", "traceIds": [TRACE_ID], "scopeType": "trace"}
    spans = document["components"]["schemas"]["SpanBatchRequest"]["properties"]["spans"]
    assert spans["maxItems"] == MAX_BATCH_SPANS
    spans["maxItems"] = FUZZED_SPANS_PER_BATCH
    return document


schema = schemathesis.openapi.from_dict(fuzzed_schema())
schema.app = application


@pytest.fixture
def credentials(transactional_db, alice):
    """Traces, scores and a batch to find, and the headers: alice's token, an ingest key.

    ``transactional_db``: requests commit for real, so the batch endpoint queues
    its tasks on commit (on the broker; no worker runs them here).
    """
    trace = agent_trace(trace_id=TRACE_ID)
    make_score(trace)
    for _ in range(3):
        make_score(agent_trace(), score=0.25)
    ScoringBatch.objects.create(
        id=BATCH_ID, scorer_id="completeness", trace_ids=[TRACE_ID], trace_count=1
    )
    ScoringRule.objects.create(pk=RULE_ID, name="Answer quality", scorer_ids=["completeness"])
    token, _ = Token.objects.get_or_create(user=alice)
    ingest_secret = create_ingest_key(name="schema")[1]
    yield {
        "user": {"Authorization": f"Token {token.key}"},
        "ingest": {"Authorization": f"Bearer {ingest_secret}"},
    }
    # The batches started here queued tasks for scores that are about to be
    # deleted; with Redis (as in CI) the queue outlives the test database.
    get_broker().purge_queue()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # Health checks about generation itself (slow or heavily filtered data), not the API.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_api_operation_answers_as_its_schema_says(case, credentials):
    headers = credentials["ingest" if case.path == "/api/spans" else "user"]
    case.call_and_validate(headers=headers, excluded_checks=not_applicable(case))


def not_applicable(case) -> list:
    """The checks that cannot hold for this request, by the API's documented design.

    - ``cursor`` is opaque: only one the API wrote (in ``next``/``previous``)
      is valid, which no schema can state, so a made-up one is rightly refused.
    - A span batch stores its valid spans and lists the others in ``rejected``
      with a 200, as OTLP's partial success does; so a batch of several spans,
      some of them invalid, is rightly accepted.
    - A batch request takes one of three forms (docs/api.md) that tie fields to
      ``scopeType`` (``targets`` or ``spanType`` only with "span", one scorer
      field), and at most 50,000 Scores (targets × scorers); JSON Schema states
      each field, not these ties, so a request that breaks them is refused.
    - A rule filter's duration range must not be inverted, its metadata keys
      (object property names, which OpenAPI 3.0 cannot constrain) must be 1 to
      200 characters without '=' or NUL, and a backfill's time range must not
      be inverted; requests that break these are refused.
    - Two span rules tie two fields together, which JSON Schema cannot state: a
      span does not end before it starts, nor last longer than
      TRACESCORE_INGEST_MAX_SPAN_SECONDS. A batch that breaks them is refused.
    """
    excluded = []
    cursor = (case.query or {}).get("cursor")
    if case.path == "/api/traces" and isinstance(cursor, str) and cursor:
        try:
            TraceCursor.decode(cursor)
        except InvalidCursor:
            excluded.append(positive_data_acceptance)
    batch = case.path in ("/api/trace-scorers/batch", "/api/trace-scorers/batch/preview")
    if batch and not fits_a_batch_form(case.body):
        excluded.append(positive_data_acceptance)
    rule_paths = ("/api/scoring-rules", "/api/trace-scorers/batch/by-filter")
    if case.path.startswith(rule_paths) and breaks_a_rule_tie(case.body):
        excluded.append(positive_data_acceptance)
    spans = case.body.get("spans") if isinstance(case.body, dict) else None
    if case.path == "/api/spans" and isinstance(spans, list):
        if len(spans) > 1:
            excluded.append(negative_data_rejection)
        if any(breaks_a_two_field_rule(span) for span in spans):
            excluded.append(positive_data_acceptance)
    return excluded


def breaks_a_two_field_rule(span) -> bool:
    if not isinstance(span, dict) or not span.get("endedAt") or not span.get("startedAt"):
        return False
    try:
        lasted = datetime.fromisoformat(span["endedAt"]) - datetime.fromisoformat(span["startedAt"])
    except (TypeError, ValueError, OverflowError):
        return False
    longest = timedelta(seconds=django_settings.TRACESCORE_INGEST_MAX_SPAN_SECONDS)
    return not timedelta(0) <= lasted <= longest


def fits_a_batch_form(body) -> bool:
    if not isinstance(body, dict):
        return False  # every field is optional on its own, but one form must be sent
    scorers = [k for k in ("scorerId", "scorerIds") if k in body]
    scope = body.get("scopeType", "trace")
    if len(scorers) != 1:
        return False
    if scope == "trace":
        return "traceIds" in body and "targets" not in body and "spanType" not in body
    if "targets" in body:
        return "spanType" not in body and "traceIds" not in body
    return "traceIds" in body and "spanType" in body


def breaks_a_rule_tie(body) -> bool:
    if not isinstance(body, dict):
        return False
    after, before = body.get("startedAfter"), body.get("startedBefore")
    if isinstance(after, str) and isinstance(before, str):
        try:
            if datetime.fromisoformat(after) >= datetime.fromisoformat(before):
                return True
        except (TypeError, ValueError, OverflowError):
            return False
    rule_filter = body.get("filter")
    if not isinstance(rule_filter, dict):
        return False
    low, high = rule_filter.get("minDurationMs"), rule_filter.get("maxDurationMs")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        return True
    metadata = rule_filter.get("metadata")
    keys = metadata if isinstance(metadata, dict) else {}
    return any(not key.strip() or len(key) > 200 or "=" in key or "\x00" in key for key in keys)
