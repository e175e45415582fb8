"""Scorer pages, the "Score Selected" modal and batch progress."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from observability.choices import SpanType
from scoring import services
from scoring.choices import ScoreStatus
from scoring.filters import ScoreFilter
from scoring.forms import SCOPES, BatchForm
from scoring.models import COST_CAP_REASON, Score, ScoringBatch
from scoring.scorers import registry
from scoring.stats import histogram, scorer_rows

RESULTS_PAGE_SIZE = 50


def judge_cost() -> Sum:
    """The total of the judges' costs (the ``cost_usd`` column) over some Scores."""
    return Sum("cost_usd")


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
        capped=Count(
            "id", filter=Q(status=ScoreStatus.SKIPPED, reason__startswith=COST_CAP_REASON)
        ),
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
        "capped": summary["capped"],
        "is_judge": (scorer.kind == "llm") if scorer else summary["cost"] is not None,
        "total": page.paginator.count,
    }
    template = "scoring/scorer_results.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def batch_new(request: HttpRequest) -> HttpResponse:
    """The "Score Selected" modal: choose scorers and a scope, see what each skips, run.

    GET opens it (``mode=spans`` for spans picked on a trace's page); a POST
    without ``action=run`` previews the choice (per-scorer skip counts), with
    ``action=run`` it starts the batch.
    """
    template = "scoring/batch_modal.html"
    if request.method == "GET":
        mode = "spans" if request.GET.get("mode") == "spans" else "traces"
        initial = {"scope": "spans" if mode == "spans" else "trace"}
        if request.GET.get("scorer_id"):
            initial["scorer_ids"] = [request.GET["scorer_id"]]
        form = BatchForm(initial=initial)
        return render(request, template, _modal_context(form, request.GET.get("count"), mode))
    form = BatchForm(request.POST)
    mode = "spans" if request.POST.get("scope") == "spans" else "traces"
    count = BatchForm.selection_size(request.POST)
    running = request.POST.get("action") == "run"
    if not form.is_valid():
        context = _modal_context(form, count, mode, show_errors=running)
        return render(request, template, context, status=400 if running else 200)
    try:
        if not running:
            plan = services.plan_batch(**form.service_kwargs())
            estimate = (
                services.estimate_batch(plan)
                if any(s.kind == "llm" for s in plan.scorers)
                else None
            )
            context = _modal_context(form, count, mode, plan=plan, estimate=estimate)
            return render(request, template, context)
        batch = services.start_batch(
            **form.service_kwargs(),
            created_by=request.user,
            max_cost_usd=form.cleaned_data["max_cost_usd"],
        )
    except services.BatchError as error:
        form.add_error(None, str(error))
        context = _modal_context(form, count, mode)
        return render(request, template, context, status=error.status_code if running else 200)
    response = render(request, "scoring/batch_started.html", {"batch": batch, "mode": mode})
    response["HX-Trigger"] = json.dumps(
        {
            "batchStarted": {
                "batchId": str(batch.pk),
                "progressUrl": reverse("scoring:batch-progress", args=[batch.pk]),
                "mode": mode,
            }
        }
    )
    return response


def _modal_context(
    form: BatchForm, count, mode: str, *, plan=None, estimate=None, show_errors: bool = True
) -> dict:
    """The modal's scorer rows (checked, available, what each would skip) and the scope."""
    try:
        count = max(0, int(count or 0))
    except (TypeError, ValueError):
        count = 0
    chosen = set(form["scorer_ids"].value() or [])
    skips = {row["scorer"].id: row for row in plan.per_scorer()} if plan else {}
    rows = []
    for scorer in registry.all():
        available, why = scorer.availability()
        rows.append(
            {
                "scorer": scorer,
                "available": available,
                "why": why,
                "checked": scorer.id in chosen and available,
                "plan": skips.get(scorer.id),
            }
        )
    return {
        "form": form,
        "count": count,
        "mode": mode,
        "rows": rows,
        "plan": plan,
        "estimate": estimate,
        "scopes": SCOPES,
        "scope": form["scope"].value() or "trace",
        "span_type": form["span_type"].value() or "",
        "span_types": SpanType.choices,
        "show_errors": show_errors and form.errors,
    }


def progress_context(batch: ScoringBatch) -> dict:
    """What the progress partial shows: counts (per scorer too), whether done, judge cost."""
    progress = batch.progress()
    spending = batch.spending()
    per_scorer = batch.progress_by_scorer() if len(batch.all_scorer_ids) > 1 else []
    names = {s.id: s.name for s in registry.all()}
    for row in per_scorer:
        row["name"] = names.get(row["scorer_id"], row["scorer_id"])
    return {
        "batch": batch,
        "progress": progress,
        # A filter-wide batch or backfill adds its Scores chunk by chunk: not done before.
        "done": progress["pending"] == 0 and not batch.fanning_out,
        "per_scorer": per_scorer,
        "cost": spending["cost_usd"],
        "skipped_by_cap": spending["skipped_by_cap"],
    }


@require_GET
def batch_progress(request: HttpRequest, batch_id) -> HttpResponse:
    """A small partial that polls itself until the batch has no pending score."""
    batch = get_object_or_404(ScoringBatch, pk=batch_id)
    context = progress_context(batch)
    context["batch_page"] = bool(request.GET.get("on_page"))
    response = render(request, "scoring/batch_progress.html", context)
    if context["done"] and request.GET.get("poll"):
        response["HX-Trigger"] = json.dumps({"batchFinished": {"batchId": str(batch.pk)}})
    return response
