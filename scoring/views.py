"""Scorer pages, the "Score Selected" modal and batch progress."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db.models import Avg, FloatField, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from scoring import services
from scoring.choices import ScoreStatus
from scoring.filters import ScoreFilter
from scoring.forms import BatchForm
from scoring.models import Score, ScoringBatch
from scoring.scorers import registry
from scoring.stats import histogram, scorer_rows

RESULTS_PAGE_SIZE = 50


def judge_cost() -> Sum:
    """The total of the judges' costs (``details.cost_usd``) over some Scores."""
    return Sum(Cast(KT("details__cost_usd"), FloatField()))


@require_GET
def scorer_list(request: HttpRequest) -> HttpResponse:
    return render(request, "scoring/scorer_list.html", {"rows": scorer_rows()})


@require_GET
def scorer_results(request: HttpRequest, scorer_id: str) -> HttpResponse:
    try:
        scorer = registry.get(scorer_id)
    except registry.UnknownScorer:
        if not Score.objects.filter(scorer_id=scorer_id).exists():
            raise Http404(f"No scorer with id {scorer_id!r}.") from None
        scorer = None
    scores = Score.objects.filter(scorer_id=scorer_id).select_related("trace")
    filterset = ScoreFilter(request.GET, queryset=scores.newest_first())
    results = filterset.qs if filterset.is_valid() else scores.none()
    page = Paginator(results, RESULTS_PAGE_SIZE).get_page(request.GET.get("page"))
    low, high = (scorer.min_score, scorer.max_score) if scorer else (0.0, 1.0)
    bins = histogram(results, low, high)
    tallest = max((b["count"] for b in bins), default=0) or 1
    for i, b in enumerate(bins):
        b["h"] = round(b["count"] / tallest * 90, 1)
        b["x"], b["y"] = i * 30, round(95 - b["h"], 1)
    summary = results.aggregate(
        mean=Avg("score", filter=Q(status=ScoreStatus.SUCCEEDED)),
        cost=judge_cost(),
    )
    context = {
        "scorer": scorer,
        "scorer_id": scorer_id,
        "scorer_name": scorer.name if scorer else scorer_id,
        "scorers": registry.all(),
        "filterset": filterset,
        "page": page,
        "bins": bins,
        "low": low,
        "high": high,
        "mean": summary["mean"],
        "cost": summary["cost"],
        "is_judge": (scorer.kind == "llm") if scorer else summary["cost"] is not None,
        "total": page.paginator.count,
    }
    template = "scoring/scorer_results.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def batch_new(request: HttpRequest) -> HttpResponse:
    """The "Score Selected" modal: choose a scorer, preview, Run Scorer."""
    template = "scoring/batch_modal.html"
    if request.method == "GET":
        form = BatchForm(initial={"scorer_id": request.GET.get("scorer_id", "")})
        return render(request, template, _modal_context(form, request.GET.get("count")))
    form = BatchForm(request.POST)
    trace_ids = request.POST.getlist("trace_ids")
    if not form.is_valid():
        response = render(request, template, _modal_context(form, len(trace_ids)))
        response.status_code = 400
        return response
    try:
        batch = services.start_batch(
            scorer_id=form.cleaned_data["scorer_id"],
            trace_ids=trace_ids,
            created_by=request.user,
        )
    except services.BatchError as error:
        form.add_error(None, str(error))
        response = render(request, template, _modal_context(form, len(trace_ids)))
        response.status_code = error.status_code
        return response
    response = render(request, "scoring/batch_started.html", {"batch": batch})
    response["HX-Trigger"] = json.dumps(
        {
            "batchStarted": {
                "batchId": str(batch.pk),
                "progressUrl": reverse("scoring:batch-progress", args=[batch.pk]),
            }
        }
    )
    return response


def _modal_context(form: BatchForm, count) -> dict:
    try:
        count = max(0, int(count or 0))
    except (TypeError, ValueError):
        count = 0
    chosen = form["scorer_id"].value() or ""
    scorer = None
    if chosen:
        try:
            scorer = registry.get(chosen)
        except registry.UnknownScorer:
            scorer = None
    return {"form": form, "count": count, "scorers": registry.all(), "chosen": scorer}


@require_GET
def batch_progress(request: HttpRequest, batch_id) -> HttpResponse:
    """A small partial that polls itself until the batch has no pending score."""
    batch = get_object_or_404(ScoringBatch, pk=batch_id)
    progress = batch.progress()
    done = progress["pending"] == 0
    cost = batch.scores.aggregate(cost=judge_cost())["cost"]
    response = render(
        request,
        "scoring/batch_progress.html",
        {"batch": batch, "progress": progress, "done": done, "cost": cost},
    )
    if done and request.GET.get("poll"):
        response["HX-Trigger"] = json.dumps({"batchFinished": {"batchId": str(batch.pk)}})
    return response
