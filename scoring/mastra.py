"""Mastra's own scoring endpoints, in Mastra's request and response shapes.

Mastra's server (``packages/server/src/server/handlers/observability.ts``) and
its client (``client-js``, ``observability.score()`` and
``listScoresBySpan()``) use:

- ``POST /api/observability/traces/score`` with
  ``{"scorerName": "...", "targets": [{"traceId": "...", "spanId": "..."?}]}``,
  answering ``{"status": "success", "message": "Scoring started for 2 traces",
  "traceCount": 2}``;
- ``GET /api/observability/traces/<traceId>/<spanId>/scores?page=0&perPage=10``,
  answering ``{"pagination": {"total", "page", "perPage", "hasMore"},
  "scores": [ScoreRowData, ...]}``.

Here ``scorerName`` is one of our scorer ids or names, and a target without a
``spanId`` is the trace's root span. The work is an ordinary batch (the
answer also carries its ``batchId``). Mastra's client sends whatever headers
it is given: ``Authorization: Bearer <token>`` is accepted here as well as
``Token <token>``.
"""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from observability.models import Trace
from scoring import services
from scoring.choices import ScopeType, ScoreSource, ScoreStatus
from scoring.models import Score
from scoring.scorers import registry
from scoring.scorers.base import Scorer
from scoring.serializers import ScorerIdText, TargetsField
from tracescore.parsers import BoundedJSONParser

MAX_PER_PAGE = 100
# Our span types in Mastra's names (its SpanType enum).
MASTRA_SPAN_TYPES = {"llm_generation": "model_generation", "retrieval": "generic"}


class BearerTokenAuthentication(TokenAuthentication):
    """DRF tokens sent as ``Authorization: Bearer <token>``, as Mastra's clients are set up."""

    keyword = "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The schema's name for it (DRF's own token scheme is ``tokenAuth``)."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A DRF token sent as `Authorization: Bearer <token>`.",
        }


AUTHENTICATION = [BearerTokenAuthentication, *APIView.authentication_classes]


def mastra_error(message: str, status: int) -> Response:
    """Mastra's error body is ``{"error": message}``; ``detail`` is ours."""
    return Response({"error": message, "detail": message}, status=status)


def find_scorer(name: str) -> Scorer | None:
    """A scorer by id, else by name (case and surrounding blanks ignored)."""
    try:
        return registry.get(name)
    except registry.UnknownScorer:
        wanted = name.strip().casefold()
        return next((s for s in registry.all() if s.name.casefold() == wanted), None)


class ScoreTracesRequestSerializer(serializers.Serializer):
    scorerName = ScorerIdText(  # noqa: N815
        # Untrimmed: " " is an unknown scorer (404), not a missing one.
        trim_whitespace=False,
        help_text="Id or name of one of our scorers.",
    )
    targets = TargetsField(help_text="Spans to score; without spanId, the trace's root span.")


class ScoreTracesResponseSerializer(serializers.Serializer):
    status = serializers.CharField(help_text='"success"')
    message = serializers.CharField(help_text='"Scoring started for 2 traces"')
    traceCount = serializers.IntegerField(  # noqa: N815
        help_text="Targets that are scored (unknown ones are left out)."
    )
    batchId = serializers.UUIDField()  # noqa: N815
    unknownTargets = serializers.ListField(child=serializers.DictField())  # noqa: N815


MAX_PAGE = 1_000_000
WHOLE_NUMBER = re.compile(r"^[0-9]{1,7}$")
MASTRA_ERROR = OpenApiResponse(
    response={
        "type": "object",
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    },
    description="What is wrong, for a person.",
)


@extend_schema(
    summary="Mastra: score traces or spans with one scorer",
    request=ScoreTracesRequestSerializer,
    responses={
        200: ScoreTracesResponseSerializer,
        400: MASTRA_ERROR,
        401: MASTRA_ERROR,
        404: MASTRA_ERROR,
        415: MASTRA_ERROR,
        503: MASTRA_ERROR,
    },
    tags=["mastra"],
)
class ScoreTracesView(APIView):
    """Mastra's ``POST /api/observability/traces/score``: starts a batch, answers at once."""

    authentication_classes = AUTHENTICATION
    # JSON only, as Mastra sends it: a form cannot carry the targets.
    parser_classes = [BoundedJSONParser]

    def post(self, request: Request) -> Response:
        serializer = ScoreTracesRequestSerializer(data=request.data)
        if not serializer.is_valid():
            field, errors = next(iter(serializer.errors.items()))
            return mastra_error(f"{field}: {' '.join(str(e) for e in errors)}", 400)
        name, targets = (
            serializer.validated_data["scorerName"],
            serializer.validated_data["targets"],
        )
        scorer = find_scorer(name)
        if scorer is None:
            return mastra_error(f"Scorer '{name}' not found", 404)
        # Targets that all name no span are whole traces: each scored on its root for the
        # whole trace, as a trace-scope batch does.
        whole_traces = isinstance(targets, list) and all(
            isinstance(t, dict) and not t.get("spanId") for t in targets
        )
        try:
            if whole_traces and targets:
                batch = services.start_batch(
                    scorer_ids=[scorer.id],
                    trace_ids=[t.get("traceId") for t in targets],
                    created_by=request.user,
                )
                unknown = [{"traceId": t} for t in batch.unknown_trace_ids]
            else:
                batch = services.start_batch(
                    scorer_ids=[scorer.id],
                    scope_type=ScopeType.SPAN,
                    targets=targets,
                    created_by=request.user,
                )
                unknown = batch.unknown_targets
        except services.BatchError as error:
            response = mastra_error(str(error), error.status_code)
            if error.status_code == 503:
                response["Retry-After"] = "10"
            return response
        count = batch.plan.target_count
        return Response(
            {
                "status": "success",
                "message": f"Scoring started for {count} {'trace' if count == 1 else 'traces'}",
                "traceCount": count,
                "batchId": str(batch.pk),
                "unknownTargets": unknown,
            }
        )


AUTOMATIC_SOURCES = (ScoreSource.LIVE, ScoreSource.RULE)


def score_row(score: Score) -> dict:
    """One Score in Mastra's ``ScoreRowData`` shape."""
    span_type = MASTRA_SPAN_TYPES.get(score.span_type, score.span_type or "generic")
    return {
        "id": str(score.pk),
        "scorerId": score.scorer_id,
        "entityId": score.span_name or score.span_id,
        "entityType": span_type,
        "entity": {"id": score.span_id, "name": score.span_name, "type": span_type},
        "runId": str(score.batch_id or score.pk),
        "input": score.input,
        "output": score.output,
        "score": score.score,
        "reason": score.reason,
        "scorer": {
            "id": score.scorer_id,
            "name": score.scorer_name,
            "version": score.scorer_version,
        },
        "metadata": {"status": score.status, "batchId": str(score.batch_id or "")},
        # Mastra's LIVE: scored on its own, as traffic came; TEST: asked for.
        "source": "LIVE" if score.source in AUTOMATIC_SOURCES else "TEST",
        "traceId": score.trace_id,
        "spanId": score.span_id,
        "createdAt": score.created_at.isoformat(),
        "updatedAt": (score.finished_at or score.created_at).isoformat(),
    }


@extend_schema(
    summary="Mastra: the scores of one span",
    parameters=[
        OpenApiParameter("trace_id", OpenApiTypes.STR, OpenApiParameter.PATH),
        OpenApiParameter("span_id", OpenApiTypes.STR, OpenApiParameter.PATH),
        OpenApiParameter(
            "page",
            {"type": "integer", "minimum": 0, "maximum": MAX_PAGE},
            description="0-based page (default 0).",
        ),
        OpenApiParameter(
            "perPage",
            {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            description=f"1 to {MAX_PER_PAGE} (default 10).",
        ),
    ],
    responses={
        200: OpenApiResponse(
            description="{pagination: {total, page, perPage, hasMore}, scores: [ScoreRowData]}: "
            "the span's succeeded scores, newest first (Mastra's score rows always have a score)."
        ),
        400: MASTRA_ERROR,
        401: MASTRA_ERROR,
        404: MASTRA_ERROR,
    },
    tags=["mastra"],
)
class SpanScoresView(APIView):
    """Mastra's ``GET /api/observability/traces/<traceId>/<spanId>/scores``."""

    authentication_classes = AUTHENTICATION

    def get(self, request: Request, trace_id: str, span_id: str) -> Response:
        raw_page = request.query_params.get("page", "0")
        raw_per_page = request.query_params.get("perPage", "10")
        # Digits only: int() would also take " 1", "+1" and "1_0".
        if not (WHOLE_NUMBER.match(raw_page) and WHOLE_NUMBER.match(raw_per_page)):
            return mastra_error("page and perPage must be whole numbers.", 400)
        page, per_page = int(raw_page), int(raw_per_page)
        if page > MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
            return mastra_error(
                f"page must be 0 to {MAX_PAGE:,} and perPage 1 to {MAX_PER_PAGE}.", 400
            )
        trace_id, span_id = trace_id.lower(), span_id.lower()
        if not Trace.objects.filter(trace_id=trace_id).exists():
            return mastra_error(f"Trace with ID '{trace_id}' not found", 404)
        scores = Score.objects.filter(
            trace_id=trace_id, span_id=span_id, status=ScoreStatus.SUCCEEDED
        ).newest_first()
        total = scores.count()
        rows = scores[page * per_page : (page + 1) * per_page]
        return Response(
            {
                "pagination": {
                    "total": total,
                    "page": page,
                    "perPage": per_page,
                    "hasMore": (page + 1) * per_page < total,
                },
                "scores": [score_row(s) for s in rows],
            }
        )
