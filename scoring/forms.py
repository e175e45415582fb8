"""Forms of the scoring pages."""

import json

from django import forms

from observability.choices import SpanType
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
