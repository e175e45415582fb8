"""REST API for scoring rules, their audit, backfills, retries and filter-wide batches."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from scoring import rules, services
from scoring.api import BAD_PAGE, BAD_PATH, ERROR, UNAUTHORIZED, is_uuid
from scoring.choices import RuleOutcomeKind
from scoring.models import RuleOutcome, ScoringBatch, ScoringRule
from scoring.serializers import (
    BackfillRequestSerializer,
    FanOutStartedSerializer,
    FilteredBatchRequestSerializer,
    RetriedSerializer,
    RuleOutcomeSerializer,
    RuleSerializer,
    RuleWriteSerializer,
)
from tracescore.parsers import BoundedJSONParser

RULE_ID = OpenApiParameter(
    "rule_id",
    {"type": "integer", "minimum": 1},
    OpenApiParameter.PATH,
    description="The rule's id.",
)
RULE_400 = OpenApiResponse(
    ERROR.response,
    description="A field of the wrong type or out of range, or a filter that cannot match "
    "(minDurationMs above maxDurationMs).",
)
RULE_404 = OpenApiResponse(ERROR.response, description="No such rule, or an unknown scorer.")
JSON_ONLY = OpenApiResponse(ERROR.response, description="The body is not application/json.")
QUEUE_503 = OpenApiResponse(
    ERROR.response, description="The task queue is unavailable: nothing was started."
)


def _rule_or_404(rule_id) -> ScoringRule:
    try:
        pk = int(rule_id)
    except (TypeError, ValueError):
        pk = None
    rule = ScoringRule.objects.filter(pk=pk).first() if pk and 0 < pk < 2**31 else None
    if rule is None:
        raise NotFound(f"No scoring rule with id {rule_id}.")
    return rule


def _error(error: services.BatchError) -> Response:
    headers = {"Retry-After": "10"} if error.status_code == 503 else None
    return Response({"detail": str(error)}, status=error.status_code, headers=headers)


def _started(request: Request, batch: ScoringBatch, what: str) -> Response:
    url = reverse("api-batch-detail", args=[batch.pk])
    body = {
        "batchId": str(batch.pk),
        "status": "fanning_out",
        "message": f"{what} started: Scores are added in the background.",
        "batchUrl": request.build_absolute_uri(url),
    }
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


@extend_schema(tags=["scoring rules"])
class RuleListView(generics.ListCreateAPIView):
    """Scoring rules: each scores the traces that match its filter, live or by a backfill."""

    queryset = ScoringRule.objects.none()
    serializer_class = RuleSerializer
    filter_backends = []
    parser_classes = [BoundedJSONParser]

    def get_queryset(self):
        return ScoringRule.objects.order_by("name", "id")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        page = getattr(self, "_page", None)
        if page is not None:
            context["stats"] = rules.rule_stats_many(rule.pk for rule in page)
        return context

    def paginate_queryset(self, queryset):
        self._page = super().paginate_queryset(queryset)
        return self._page

    @extend_schema(
        summary="Scoring rules with their outcome counts",
        responses={
            200: RuleSerializer(many=True),
            400: BAD_PAGE,
            401: UNAUTHORIZED,
            404: OpenApiResponse(ERROR.response, description="No such page."),
        },
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a scoring rule",
        request=RuleWriteSerializer,
        responses={
            201: RuleSerializer,
            400: RULE_400,
            401: UNAUTHORIZED,
            404: RULE_404,
            415: JSON_ONLY,
        },
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        serializer = RuleWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            rule = rules.create_rule(**serializer.service_kwargs(), created_by=request.user)
        except rules.RuleError as error:
            return _error(error)
        body = RuleSerializer(rule, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


@extend_schema(tags=["scoring rules"], parameters=[RULE_ID])
class RuleDetailView(generics.GenericAPIView):
    serializer_class = RuleSerializer
    filter_backends = []
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        summary="One scoring rule",
        responses={200: RuleSerializer, 400: BAD_PATH, 401: UNAUTHORIZED, 404: ERROR},
    )
    def get(self, request: Request, rule_id) -> Response:
        return Response(self.get_serializer(_rule_or_404(rule_id)).data)

    @extend_schema(
        summary="Change a scoring rule; new scorers, filter, target or sample rate make a "
        "new version",
        request=RuleWriteSerializer(partial=True),
        responses={
            200: RuleSerializer,
            400: RULE_400,
            401: UNAUTHORIZED,
            404: RULE_404,
            415: JSON_ONLY,
        },
    )
    def patch(self, request: Request, rule_id) -> Response:
        rule = _rule_or_404(rule_id)
        serializer = RuleWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            rule = rules.update_rule(rule, created_by=request.user, **serializer.service_kwargs())
        except rules.RuleError as error:
            return _error(error)
        return Response(self.get_serializer(rule).data)

    @extend_schema(
        summary="Delete a scoring rule and its audit (its Scores stay)",
        request=None,
        responses={204: None, 400: BAD_PATH, 401: UNAUTHORIZED, 404: ERROR},
    )
    def delete(self, request: Request, rule_id) -> Response:
        rules.delete_rule(_rule_or_404(rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=["scoring rules"],
    summary="What a rule did with each trace it considered, newest first",
    parameters=[
        RULE_ID,
        OpenApiParameter(
            "outcome",
            {"type": "string", "enum": RuleOutcomeKind.values},
            description="Only this outcome.",
        ),
    ],
    responses={
        200: RuleOutcomeSerializer(many=True),
        400: BAD_PAGE,
        401: UNAUTHORIZED,
        404: ERROR,
    },
)
class RuleAuditView(generics.ListAPIView):
    serializer_class = RuleOutcomeSerializer
    filter_backends = []
    queryset = RuleOutcome.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RuleOutcome.objects.none()
        rule = _rule_or_404(self.kwargs["rule_id"])
        outcomes = RuleOutcome.objects.filter(rule=rule)
        wanted = self.request.query_params.get("outcome")
        if wanted:
            if wanted not in RuleOutcomeKind.values:
                raise ValidationError(
                    {"outcome": [f"Must be one of {', '.join(RuleOutcomeKind.values)}."]}
                )
            outcomes = outcomes.filter(outcome=wanted)
        return outcomes.order_by("-considered_at", "-id")


@extend_schema(
    tags=["scoring rules"],
    summary="Run a rule on existing traces (a backfill), in the background",
    parameters=[RULE_ID],
    request=BackfillRequestSerializer,
    responses={
        202: FanOutStartedSerializer,
        400: OpenApiResponse(
            ERROR.response,
            description="A bad time range or limit (startedAfter not before startedBefore).",
        ),
        401: UNAUTHORIZED,
        404: ERROR,
        415: JSON_ONLY,
        503: QUEUE_503,
    },
)
class RuleBackfillView(generics.GenericAPIView):
    """Answers 202 at once; tasks add the Scores chunk by chunk (newest traces first).
    Traces the rule already considered are left out."""

    serializer_class = BackfillRequestSerializer
    filter_backends = []
    parser_classes = [BoundedJSONParser]

    def post(self, request: Request, rule_id) -> Response:
        rule = _rule_or_404(rule_id)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            batch = rules.start_backfill(
                rule=rule,
                started_after=data.get("startedAfter"),
                started_before=data.get("startedBefore"),
                limit=data.get("limit"),
                created_by=request.user,
            )
        except services.BatchError as error:
            return _error(error)
        return _started(request, batch, f"Backfill of rule {rule.name!r}")


@extend_schema(
    tags=["scoring rules"],
    summary="Queue again every failed Score of a rule",
    parameters=[RULE_ID],
    request=None,
    responses={202: RetriedSerializer, 400: BAD_PATH, 401: UNAUTHORIZED, 404: ERROR},
)
class RuleRetryView(generics.GenericAPIView):
    serializer_class = RetriedSerializer
    filter_backends = []

    def post(self, request: Request, rule_id) -> Response:
        count = rules.retry_failed(rule=_rule_or_404(rule_id))
        return Response({"count": count}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    summary="Queue again every failed Score of a batch",
    parameters=[
        OpenApiParameter(
            "batch_id",
            {"type": "string", "format": "uuid"},
            OpenApiParameter.PATH,
            description="The batch id.",
        )
    ],
    request=None,
    responses={202: RetriedSerializer, 400: BAD_PATH, 401: UNAUTHORIZED, 404: ERROR},
)
class BatchRetryView(generics.GenericAPIView):
    serializer_class = RetriedSerializer
    filter_backends = []

    def post(self, request: Request, batch_id: str) -> Response:
        batch = ScoringBatch.objects.filter(pk=batch_id).first() if is_uuid(batch_id) else None
        if batch is None:
            raise NotFound(f"No scoring batch with id {batch_id}.")
        return Response({"count": rules.retry_failed(batch=batch)}, status=202)


@extend_schema(
    summary="Score every trace a filter matches (up to 1,000,000), in the background",
    request=FilteredBatchRequestSerializer,
    responses={
        202: FanOutStartedSerializer,
        400: OpenApiResponse(
            ERROR.response,
            description="A bad filter (minDurationMs above maxDurationMs), time range or "
            "limit, or an unavailable scorer.",
        ),
        401: UNAUTHORIZED,
        404: OpenApiResponse(ERROR.response, description="An unknown scorer."),
        415: JSON_ONLY,
        503: QUEUE_503,
    },
)
class FilteredBatchView(generics.GenericAPIView):
    """ "Select all N matching" → score now. Answers 202 at once; tasks add the Scores in
    chunks, newest traces first; the batch's counts grow as they land."""

    serializer_class = FilteredBatchRequestSerializer
    filter_backends = []
    parser_classes = [BoundedJSONParser]

    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            batch = rules.start_filtered_batch(
                filter=data["filter"],
                scorer_ids=data["scorerIds"],
                target=data["target"],
                sample_rate=data["sampleRate"],
                max_cost_usd=data.get("maxCostUsd"),
                limit=data.get("limit"),
                started_after=data.get("startedAfter"),
                started_before=data.get("startedBefore"),
                created_by=request.user,
            )
        except services.BatchError as error:
            return _error(error)
        return _started(request, batch, "Scoring of every matching trace")
