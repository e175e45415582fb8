"""The scorer registry: settings, the decorator, duplicates, custom scorers."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from scoring.scorers import registry
from scoring.tests.custom_scorers import Politeness
from tests.factories import agent_trace

pytestmark = pytest.mark.django_db

CUSTOM = "scoring.tests.custom_scorers"


def test_a_custom_scorer_module_appears_in_the_registry_and_scores(settings):
    from scoring.inputs import build_scoring_input

    settings.TRACESCORE_SCORERS = [*settings.TRACESCORE_SCORERS, CUSTOM]
    ids = [s.id for s in registry.all()]
    assert "politeness" in ids and "completeness" in ids
    trace = agent_trace(answer="Thank you for waiting, it ships today.")
    result = registry.get("politeness").score(build_scoring_input(trace.trace_id))
    assert (result.score, result.reason) == (1.0, "The answer is polite.")


def test_a_scorer_class_can_be_listed_by_its_dotted_path(settings):
    settings.TRACESCORE_SCORERS = [f"{CUSTOM}.Politeness"]
    assert [type(s) for s in registry.all()] == [Politeness]


def test_duplicate_ids_fail_with_a_clear_message():
    with pytest.raises(ImproperlyConfigured, match="Duplicate scorer id 'politeness'"):
        registry.build([CUSTOM, f"{CUSTOM}.Politeness"])


def test_an_unimportable_path_fails_with_a_clear_message():
    with pytest.raises(ImproperlyConfigured, match="cannot import 'no.such.Scorer'"):
        registry.build(["no.such.Scorer"])


def test_an_unknown_id_raises_unknown_scorer():
    with pytest.raises(registry.UnknownScorer, match="No scorer with id 'nope'"):
        registry.get("nope")


def test_list_scorers_shows_availability(capsys, settings):
    from django.core.management import call_command

    settings.TRACESCORE_JUDGE_BASE_URL = ""
    call_command("list_scorers")
    out = capsys.readouterr().out
    assert "completeness" in out and "code  available" in out
    assert "faithfulness" in out and "unavailable: No LLM judge configured" in out
