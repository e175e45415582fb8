"""A user's own scorer, as docs/scorers.md shows it."""

from scoring.scorers import Scorer, ScorerError, ScoreResult, ScoringInput, register_scorer


@register_scorer
class Politeness(Scorer):
    id = "politeness"
    name = "Politeness"
    description = "Does the answer say please or thank you?"

    def score(self, data: ScoringInput) -> ScoreResult:
        if not data.output_text:
            raise ScorerError("There is no answer to judge.")
        polite = any(word in data.output_text.lower() for word in ("please", "thank"))
        return ScoreResult(
            score=1.0 if polite else 0.0,
            reason="The answer is polite." if polite else "No please or thank you.",
        )
