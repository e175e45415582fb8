"""Forms of the scoring pages."""

from django import forms

from scoring.scorers import registry


class BatchForm(forms.Form):
    """The scorer of a "Score Selected" batch; the trace ids come as repeated ``trace_ids``."""

    scorer_id = forms.ChoiceField(label="Scorer")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scorer_id"].choices = [("", "Choose a scorer…")] + [
            (s.id, s.name) for s in registry.all()
        ]
        self.fields["scorer_id"].error_messages["required"] = "Choose a scorer."
