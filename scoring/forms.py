"""Forms of the scoring pages."""

import json

from django import forms

from observability.choices import SpanStatus, SpanType
from scoring.choices import ScopeType
from scoring.scorers import registry
from scoring.services import InvalidBatchError, clean_max_cost

SCOPES = [
    ("trace", "The whole trace (its root span)"),
    ("llm_generation", "Every LLM generation"),
    ("tool_call", "Every tool call"),
    ("type", "Every span of a type"),
]
SPANS = ("spans", "The selected spans")


class BatchForm(forms.Form):
    """The "Score Selected" modal: scorers, scope, and the selection as one JSON field.

    ``selection`` is ``{"traceIds": [...]}`` (the trace list) or ``{"targets":
    [{"traceId", "spanId"}]}`` (spans picked on a trace's page): one field,
    whatever its size, so Django's limit of 1,000 form fields never applies.
    """

    scorer_ids = forms.MultipleChoiceField(label="Scorers", widget=forms.CheckboxSelectMultiple)
    scope = forms.ChoiceField(choices=[*SCOPES, SPANS], initial="trace")
    span_type = forms.ChoiceField(choices=SpanType.choices, required=False)
    selection = forms.CharField(widget=forms.HiddenInput)
    max_cost_usd = forms.CharField(
        required=False, label="Cost cap (US$)", help_text="Skip the judges' Scores past it."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scorer_ids"].choices = [(s.id, s.name) for s in registry.all()]
        self.fields["scorer_ids"].error_messages["required"] = "Choose at least one scorer."
        self.fields["selection"].error_messages["required"] = "Nothing is selected."

    def clean_selection(self) -> dict:
        try:
            value = json.loads(self.cleaned_data["selection"])
        except ValueError:
            raise forms.ValidationError("The selection could not be read.") from None
        if not isinstance(value, dict) or not (
            isinstance(value.get("traceIds"), list) or isinstance(value.get("targets"), list)
        ):
            raise forms.ValidationError("The selection holds no traces or spans.")
        return value

    def clean_max_cost_usd(self) -> float | None:
        try:
            return clean_max_cost(self.cleaned_data["max_cost_usd"].strip())
        except InvalidBatchError:
            raise forms.ValidationError(
                "The cost cap must be a positive number of US dollars, such as 5 or 0.25."
            ) from None

    def clean(self):
        data = super().clean()
        if data.get("scope") == "type" and not data.get("span_type"):
            self.add_error("span_type", "Choose the span type to score.")
        return data

    def service_kwargs(self) -> dict:
        """The ``services.start_batch``/``plan_batch`` arguments for this form."""
        data = self.cleaned_data
        selection, scope = data["selection"], data["scope"]
        kwargs = {"scorer_ids": data["scorer_ids"]}
        if "targets" in selection:
            return {**kwargs, "scope_type": ScopeType.SPAN, "targets": selection["targets"]}
        trace_ids = selection["traceIds"]
        if scope == "trace":
            return {**kwargs, "trace_ids": trace_ids}
        span_type = data["span_type"] if scope == "type" else scope
        return {
            **kwargs,
            "scope_type": ScopeType.SPAN,
            "trace_ids": trace_ids,
            "span_type": span_type,
        }

    @staticmethod
    def selection_size(form_data) -> int:
        """How many traces or spans the posted selection holds (0 when unreadable)."""
        try:
            value = json.loads(form_data.get("selection") or "{}")
        except ValueError:
            return 0
        if not isinstance(value, dict):
            return 0
        items = value.get("targets", value.get("traceIds"))
        return len(items) if isinstance(items, list) else 0


PERCENT = {"min_value": 0, "max_value": 100, "max_digits": 7, "decimal_places": 4}
TARGETS = [("trace", "The whole trace (its root span)")] + [
    (value, f"Every span of type {label}") for value, label in SpanType.choices
]


def scorer_choices() -> list[tuple[str, str]]:
    return [(s.id, s.name) for s in registry.all()]


class TraceFilterFields(forms.Form):
    """The trace list's filter fields, as a rule's filter (``{"name", "type", …}``)."""

    filter_name = forms.CharField(label="Name contains", max_length=512, required=False)
    filter_type = forms.ChoiceField(
        label="Type", choices=[("", "Any type"), *SpanType.choices], required=False
    )
    filter_status = forms.ChoiceField(
        label="Status", choices=[("", "Any status"), *SpanStatus.choices], required=False
    )
    filter_service = forms.CharField(label="Service", max_length=256, required=False)
    filter_metadata = forms.CharField(
        label="Metadata",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "key=value, one per line"}),
        help_text="key=value, one per line: traces whose metadata has every one of them.",
    )
    min_duration_ms = forms.FloatField(label="Min duration (ms)", min_value=0, required=False)
    max_duration_ms = forms.FloatField(label="Max duration (ms)", min_value=0, required=False)

    FILTER_FIELDS = {
        "filter_name": "name",
        "filter_type": "type",
        "filter_status": "status",
        "filter_service": "service",
        "min_duration_ms": "minDurationMs",
        "max_duration_ms": "maxDurationMs",
    }

    def clean_filter_metadata(self) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for line in self.cleaned_data["filter_metadata"].splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(f"Write metadata as key=value, not {line.strip()!r}.")
            pairs[key.strip()] = value.strip()
        return pairs

    def clean(self):
        data = super().clean()
        low, high = data.get("min_duration_ms"), data.get("max_duration_ms")
        if low is not None and high is not None and low > high:
            self.add_error("max_duration_ms", "The max duration is below the min duration.")
        return data

    def rule_filter(self) -> dict:
        """The rule filter JSON of the cleaned fields (empty fields left out)."""
        data = self.cleaned_data
        result = {
            key: data[field]
            for field, key in self.FILTER_FIELDS.items()
            if data.get(field) not in (None, "")
        }
        if data.get("filter_metadata"):
            result["metadata"] = data["filter_metadata"]
        return result

    @classmethod
    def initial_from_filter(cls, rule_filter: dict) -> dict:
        """Form initial values of a rule filter (the inverse of ``rule_filter``)."""
        initial = {
            field: rule_filter[key]
            for field, key in cls.FILTER_FIELDS.items()
            if rule_filter.get(key) not in (None, "")
        }
        metadata = rule_filter.get("metadata") or {}
        if isinstance(metadata, dict) and metadata:
            initial["filter_metadata"] = "\n".join(f"{k}={v}" for k, v in metadata.items())
        return initial


class RuleForm(TraceFilterFields):
    """A scoring rule: name, scorers, filter, target, sample rate (in %), live, active, cap."""

    name = forms.CharField(max_length=200)
    scorer_ids = forms.MultipleChoiceField(label="Scorers", widget=forms.CheckboxSelectMultiple)
    target = forms.ChoiceField(label="Score", choices=TARGETS, initial="trace")
    sample_rate = forms.DecimalField(
        label="Sample rate (%)",
        initial=100,
        help_text="The share of matching traces to score, decided from the trace id.",
        **PERCENT,
    )
    live = forms.BooleanField(
        label="Live: score new traces once they finish", required=False, initial=True
    )
    active = forms.BooleanField(label="Active (untick to pause)", required=False, initial=True)
    max_cost_usd = forms.DecimalField(
        label="Cost cap ($)",
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=6,
        help_text="Judge spending after which this rule's scores are skipped. Empty: no cap.",
    )

    field_order = ["name", "scorer_ids"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scorer_ids"].choices = scorer_choices()
        self.fields["scorer_ids"].error_messages["required"] = "Choose at least one scorer."

    def rule_kwargs(self) -> dict:
        """The ``rules.create_rule``/``update_rule`` keyword arguments."""
        data = self.cleaned_data
        cap = data.get("max_cost_usd")
        return {
            "name": data["name"],
            "scorer_ids": data["scorer_ids"],
            "filter": self.rule_filter(),
            "target": data["target"],
            "sample_rate": float(data["sample_rate"]) / 100,
            "live": data["live"],
            "active": data["active"],
            "max_cost_usd": float(cap) if cap is not None else None,
        }

    @classmethod
    def initial_from_rule(cls, rule) -> dict:
        return {
            "name": rule.name,
            "scorer_ids": list(rule.scorer_ids),
            "target": rule.target,
            "sample_rate": round(rule.sample_rate * 100, 4),
            "live": rule.live,
            "active": rule.active,
            "max_cost_usd": rule.max_cost_usd,
            **cls.initial_from_filter(rule.filter or {}),
        }


class BackfillForm(forms.Form):
    """ "Run on existing traces": a time range and an optional limit."""

    started_after = forms.DateTimeField(label="Started after", required=False)
    started_before = forms.DateTimeField(label="Started before", required=False)
    limit = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)

    def clean(self):
        data = super().clean()
        after, before = data.get("started_after"), data.get("started_before")
        if after and before and after >= before:
            self.add_error("started_before", "This must be later than 'Started after'.")
        return data


class FilteredBatchForm(forms.Form):
    """ "Select all N matching" → score now: scorers, target, sample rate (%), cost cap."""

    scorer_ids = forms.MultipleChoiceField(label="Scorers", widget=forms.CheckboxSelectMultiple)
    target = forms.ChoiceField(label="Score", choices=TARGETS, initial="trace")
    sample_rate = forms.DecimalField(label="Sample rate (%)", initial=100, **PERCENT)
    max_cost_usd = forms.DecimalField(
        label="Cost cap ($)", required=False, min_value=0, max_digits=12, decimal_places=6
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scorer_ids"].choices = scorer_choices()
        self.fields["scorer_ids"].error_messages["required"] = "Choose at least one scorer."

    def batch_kwargs(self) -> dict:
        data = self.cleaned_data
        cap = data.get("max_cost_usd")
        return {
            "scorer_ids": data["scorer_ids"],
            "target": data["target"],
            "sample_rate": float(data["sample_rate"]) / 100,
            "max_cost_usd": float(cap) if cap is not None else None,
        }
