"""Scoring rule pages: the list, the form, a rule with its audit, its backfill and retry;
a batch's page; and "Select all N matching" on the trace list (score now or save as rule).

Every write goes through ``scoring.rules``; bad input shows the form again with
its errors (status 400), never a 500.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from observability.filters import TraceFilter
from observability.models import Trace
from scoring import rules
from scoring.choices import RuleOutcomeKind, ScoreStatus
from scoring.forms import BackfillForm, FilteredBatchForm, RuleForm
from scoring.models import ScoringBatch, ScoringRule
from scoring.scorers import registry
from scoring.services import BatchError
from scoring.views import progress_context

AUDIT_PAGE_SIZE = 50
# The rule page's counts, in the order shown; each links to the audit of that outcome.
OUTCOMES = [
    ("considered", "Considered", ""),
    ("scored", "Scored", RuleOutcomeKind.SCORED),
    ("sampled_out", "Sampled out", RuleOutcomeKind.SAMPLED_OUT),
    ("skipped", "Skipped", RuleOutcomeKind.SKIPPED),
    ("failed", "Failed", RuleOutcomeKind.FAILED),
    ("pending", "Pending", RuleOutcomeKind.PENDING),
]


def scorer_names() -> dict[str, str]:
    return {s.id: s.name for s in registry.all()}


@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    rules_ = list(ScoringRule.objects.all())
    stats = rules.rule_stats_many([rule.pk for rule in rules_])
    for rule in rules_:
        rule.stats = stats.get(rule.pk, rules.EMPTY_STATS)
    context = {"rules": rules_, "names": scorer_names()}
    return render(request, "scoring/rule_list.html", context)


@require_http_methods(["GET", "POST"])
def rule_new(request: HttpRequest) -> HttpResponse:
    """The new-rule form; ``?name=…&type=…`` (the trace list's filter) prefills its filter."""
    if request.method == "GET":
        initial = {}
        if any(key in request.GET for key in FILTER_PARAMS):
            try:
                initial = RuleForm.initial_from_filter(rules.filter_from_params(request.GET))
            except rules.RuleError as error:
                messages.error(request, f"The trace list's filter could not be used: {error}")
        return render(request, "scoring/rule_form.html", {"form": RuleForm(initial=initial)})
    form = RuleForm(request.POST)
    if form.is_valid():
        try:
            rule = rules.create_rule(**form.rule_kwargs(), created_by=request.user)
        except rules.RuleError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Rule {rule.name!r} created.")
            return redirect(rule)
    return render(request, "scoring/rule_form.html", {"form": form}, status=400)


# Trace list parameters that make "Save as rule" prefill the filter.
FILTER_PARAMS = (
    "name",
    "type",
    "status",
    "service",
    "metadata",
    "min_duration_ms",
    "max_duration_ms",
)


@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(ScoringRule, pk=pk)
    if request.method == "GET":
        form = RuleForm(initial=RuleForm.initial_from_rule(rule))
        return render(request, "scoring/rule_form.html", {"form": form, "rule": rule})
    form = RuleForm(request.POST)
    if form.is_valid():
        try:
            rule = rules.update_rule(rule, **form.rule_kwargs(), created_by=request.user)
        except rules.RuleError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Rule {rule.name!r} saved (version {rule.version}).")
            return redirect(rule)
    return render(request, "scoring/rule_form.html", {"form": form, "rule": rule}, status=400)


@require_GET
def rule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A rule, its counts per outcome and its audit (``?outcome=…`` filters it)."""
    rule = get_object_or_404(ScoringRule, pk=pk)
    return rule_page(request, rule, BackfillForm())


def rule_page(request: HttpRequest, rule: ScoringRule, backfill_form, status: int = 200):
    outcome = request.GET.get("outcome", "")
    audit = rule.outcomes.select_related("trace", "score").order_by("-considered_at", "-id")
    if outcome in RuleOutcomeKind.values:
        audit = audit.filter(outcome=outcome)
    elif outcome:
        messages.error(request, f"There is no outcome {outcome!r}; showing them all.")
        outcome = ""
    page = Paginator(audit, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    template = "scoring/rule_detail.html"
    context = {
        "rule": rule,
        "outcome": outcome,
        "page": page,
        "outcome_choices": RuleOutcomeKind.choices,
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, template + "#audit", context)
    stats = rules.rule_stats(rule)
    context |= {
        "counts": [(key, label, kind, stats.get(key, 0)) for key, label, kind in OUTCOMES],
        # "Retry N failed" re-queues failed Scores (a trace may have one per scorer).
        "failed": rule.scores.filter(status=ScoreStatus.FAILED).count(),
        "names": scorer_names(),
        "backfill_form": backfill_form,
        "batches": rule.batches.order_by("-created_at")[:5],
    }
    return render(request, template, context, status=status)


@require_POST
def rule_active(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause (``active=0``) or resume (``active=1``) a rule."""
    rule = get_object_or_404(ScoringRule, pk=pk)
    active = request.POST.get("active") == "1"
    rules.update_rule(rule, active=active, created_by=request.user)
    messages.success(request, f"Rule {rule.name!r} {'resumed' if active else 'paused'}.")
    return redirect(rule)


@require_POST
def rule_backfill(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Run on existing traces": start a backfill, then show its batch."""
    rule = get_object_or_404(ScoringRule, pk=pk)
    form = BackfillForm(request.POST)
    if form.is_valid():
        try:
            batch = rules.start_backfill(rule=rule, **form.cleaned_data, created_by=request.user)
        except BatchError as error:  # bad input, or the task queue is away (503)
            form.add_error(None, str(error))
            return rule_page(request, rule, form, status=error.status_code)
        else:
            messages.success(request, f"Running {rule.name!r} on the existing traces.")
            return redirect("scoring:batch-detail", batch.pk)
    return rule_page(request, rule, form, status=400)


@require_POST
def rule_retry(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(ScoringRule, pk=pk)
    count = rules.retry_failed(rule=rule)
    messages.success(request, f"{count} failed score{'s' if count != 1 else ''} queued again.")
    return redirect(rule)


@require_http_methods(["GET", "POST"])
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(ScoringRule, pk=pk)
    if request.method == "GET":
        return render(request, "scoring/rule_delete.html", {"rule": rule})
    name = rule.name
    rules.delete_rule(rule)
    messages.success(request, f"Rule {name!r} deleted.")
    return redirect("scoring:rule-list")


@require_GET
def batch_detail(request: HttpRequest, batch_id) -> HttpResponse:
    """A batch's page: its progress (which polls itself) and "Retry N failed"."""
    batch = get_object_or_404(ScoringBatch.objects.select_related("rule"), pk=batch_id)
    context = progress_context(batch)
    return render(request, "scoring/batch_detail.html", context)


@require_POST
def batch_retry(request: HttpRequest, batch_id) -> HttpResponse:
    batch = get_object_or_404(ScoringBatch, pk=batch_id)
    count = rules.retry_failed(batch=batch)
    messages.success(request, f"{count} failed score{'s' if count != 1 else ''} queued again.")
    return redirect("scoring:batch-detail", batch.pk)


@require_http_methods(["GET", "POST"])
def matching_batch(request: HttpRequest) -> HttpResponse:
    """ "Select all N matching" on the trace list: the count, then score now or save as rule.

    GET (the trace list's filter parameters) answers the modal with the count;
    POST (the same parameters plus the form) starts a filter-wide batch and
    goes to its page.
    """
    params = request.POST if request.method == "POST" else request.GET
    kept = {k: v for k, v in params.items() if k in MATCHING_PARAMS and v}
    context: dict = {"params": kept, "query": urlencode(kept)}
    template = "scoring/matching_modal.html" if request.htmx else "scoring/matching_page.html"
    try:
        rule_filter = rules.filter_from_params(params)
        after, before = started_range(params)
        context["count"] = filtered_traces(params).count()
    except rules.RuleError as error:
        context["filter_error"] = str(error)
        return render(request, template, context, status=400)
    context |= {"filter": rule_filter, "after": after, "before": before}
    if request.method == "GET":
        context["form"] = FilteredBatchForm()
        return render(request, template, context)
    form = FilteredBatchForm(request.POST)
    if form.is_valid():
        try:
            batch = rules.start_filtered_batch(
                filter=rule_filter,
                started_after=after,
                started_before=before,
                **form.batch_kwargs(),
                created_by=request.user,
            )
        except BatchError as error:  # bad input, or the task queue is away (503)
            form.add_error(None, str(error))
            context["form"] = form
            return render(request, template, context, status=error.status_code)
        else:
            url = reverse("scoring:batch-detail", args=[batch.pk])
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = url
                return response
            return redirect(url)
    context["form"] = form
    return render(request, template, context, status=400)


@require_GET
def matching_count(request: HttpRequest) -> HttpResponse:
    """How many traces the trace list's filter matches, as text (the "Select all N" label).

    One COUNT; a filter that cannot be used answers an empty label (the dialog
    behind the link says what is wrong).
    """
    try:
        count = filtered_traces(request.GET).count()
    except rules.RuleError:
        return HttpResponse("", content_type="text/plain")
    return HttpResponse(f"{count:,}", content_type="text/plain")


def filtered_traces(params):
    """The traces "Select all matching" selects: the rule filter and the list's time range."""
    after, before = started_range(params)
    traces = rules.matching_traces(rules.filter_from_params(params))
    if after:
        traces = traces.filter(started_at__gte=after)
    if before:
        traces = traces.filter(started_at__lt=before)
    return traces


# The trace list's filter parameters that "Select all matching" carries along.
MATCHING_PARAMS = (*FILTER_PARAMS, "started_after", "started_before", "scored_by")


def started_range(params) -> tuple[datetime | None, datetime | None]:
    """The trace list's ``started_after``/``started_before`` as the bounds its list applies.

    A rule filter has no time range; "Score now" takes it separately. A date
    alone covers its whole day, as on the list.
    """
    form = TraceFilter(params, queryset=Trace.objects.none()).form
    if not form.is_valid():
        errors = [f"{k}: {' '.join(v)}" for k, v in form.errors.items()]
        raise rules.RuleError(" ".join(errors))
    after, before = form.cleaned_data.get("started_after"), form.cleaned_data.get("started_before")
    if isinstance(after, date) and not isinstance(after, datetime):
        after = start_of_day(after)
    if isinstance(before, date) and not isinstance(before, datetime):
        before = start_of_day(before + timedelta(days=1))
    return after, before


def start_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
