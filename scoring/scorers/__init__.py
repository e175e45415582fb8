"""Scorers: the contract (base), the registry, and the built-in families."""

from scoring.scorers.base import (
    LLMStep,
    Scorer,
    ScorerError,
    ScoreResult,
    ScorerSkipped,
    ScoringInput,
    ToolCall,
)
from scoring.scorers.registry import register_scorer

__all__ = [
    "LLMStep",
    "Scorer",
    "ScorerError",
    "ScorerSkipped",
    "ScoreResult",
    "ScoringInput",
    "ToolCall",
    "register_scorer",
]
