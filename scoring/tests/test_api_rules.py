"""The scoring rules API: rules, their audit, backfills, retries and filter-wide batches.

Tasks run in-process (django-q2 sync mode), so a request's background work is done
when the next request looks.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_q.brokers import get_broker
from django_q.conf import Conf

from scoring import rules
from scoring.models import RuleOutcome, Score, ScoringRule
from scoring.tests import worker_scorers
from tests.factories import agent_trace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process(monkeypatch, settings, tmp_path):
    get_broker().purge_queue()
    monkeypatch.setattr(Conf, "SYNC", True)
    monkeypatch.setenv("TEST_SCORER_BROKEN_FLAG", str(tmp_path / "broken"))
    settings.TRACESCORE_SCORERS = [*settings.TRACESCORE_SCORERS, "scoring.tests.worker_scorers"]
    settings.TRACESCORE_LIVE_SETTLE_SECONDS = 0
    settings.TRACESCORE_LIVE_SWEEPER_SECONDS = 0
    worker_scorers.slow_calls.clear()
    rules.forget_live_rules()
    yield
    rules.forget_live_rules()
    get_broker().purge_queue()


RULE = {
    "name": "Answer quality",
    "scorerIds": ["test-answer-length"],
    "filter": {"type": "agent_run", "metadata": {"tier": "gold"}},
    "sampleRate": 1,
}


def create(api_client, **changes):
    response = api_client.post("/api/scoring-rules", {**RULE, **changes}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_rule_is_created_listed_changed_and_deleted(api_client):
    rule = create(api_client)
    assert rule | {"id": 0, "createdAt": "", "updatedAt": "", "url": ""} == {
        "id": 0,
        "name": "Answer quality",
        "scorerIds": ["test-answer-length"],
        "filter": {"type": "agent_run", "metadata": {"tier": "gold"}},
        "target": "trace",
        "sampleRate": 1.0,
        "live": True,
        "active": True,
        "maxCostUsd": None,
        "version": 1,
        "stats": {
            "considered": 0,
            "scored": 0,
            "sampledOut": 0,
            "skipped": 0,
            "failed": 0,
            "pending": 0,
        },
        "createdAt": "",
        "updatedAt": "",
        "url": "",
    }
    url = f"/api/scoring-rules/{rule['id']}"
    changed = api_client.patch(url, {"active": False}, format="json").json()
    assert (changed["active"], changed["version"]) == (False, 1)
    changed = api_client.patch(url, {"sampleRate": 0.1}, format="json").json()
    assert (changed["sampleRate"], changed["version"]) == (0.1, 2)
    listed = api_client.get("/api/scoring-rules").json()
    assert [r["id"] for r in listed["results"]] == [rule["id"]]
    assert api_client.delete(url).status_code == 204
    assert api_client.get(url).status_code == 404
    assert not ScoringRule.objects.exists()


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"sampleRate": 2}, 400, "sampleRate"),
        ({"scorerIds": ["nope"]}, 404, "No scorer with id 'nope'."),
        ({"filter": {"minDurationMs": 10, "maxDurationMs": 1}}, 400, "must not exceed"),
        ({"filter": {"colour": "red"}}, 400, "unknown field(s) colour"),
        ({"target": "robot"}, 400, "target"),
        ({"name": "   "}, 400, "name must be non-empty"),
    ],
)
def test_a_bad_rule_is_refused_with_a_message(api_client, body, status, message):
    response = api_client.post("/api/scoring-rules", {**RULE, **body}, format="json")
    assert response.status_code == status
    assert message in str(response.json())
    assert not ScoringRule.objects.exists()


def test_rules_need_a_signed_in_caller(anon_api_client):
    assert anon_api_client.get("/api/scoring-rules").status_code == 401
    assert anon_api_client.post("/api/scoring-rules", RULE, format="json").status_code == 401


def test_scores_made_by_a_rule_say_so_and_the_audit_lists_each_trace(api_client):
    rule = create(api_client, filter={"type": "agent_run"}, sampleRate=0.5)
    traces = [agent_trace() for _ in range(20)]
    outcomes = {o.trace_id: o.outcome for o in RuleOutcome.objects.all()}
    assert len(outcomes) == 20
    scored = [t for t in traces if outcomes[t.trace_id] == "scored"]
    assert scored and len(scored) < 20
    scores = api_client.get(f"/api/traces/{scored[0].trace_id}/scores").json()["results"]
    assert [(s["source"], s["ruleId"], s["ruleVersion"]) for s in scores] == [
        ("rule", rule["id"], 1)
    ]
    audit = api_client.get(
        f"/api/scoring-rules/{rule['id']}/audit", {"outcome": "sampled_out"}
    ).json()
    assert audit["count"] == 20 - len(scored)
    assert {(row["outcome"], row["reason"], row["scoreId"]) for row in audit["results"]} == {
        ("sampled_out", "sampled out at 50 %", None)
    }
    assert api_client.get(f"/api/scoring-rules/{rule['id']}").json()["stats"]["scored"] == len(
        scored
    )
    bad = api_client.get(f"/api/scoring-rules/{rule['id']}/audit", {"outcome": "maybe"})
    assert bad.status_code == 400


def test_a_backfill_answers_202_and_the_batch_scores_what_the_filter_matches(api_client):
    old = [agent_trace(metadata={"tier": "gold"}) for _ in range(3)]
    agent_trace(metadata={"tier": "free"})
    rule = create(api_client, live=False)
    response = api_client.post(
        f"/api/scoring-rules/{rule['id']}/backfill", {"limit": 1000}, format="json"
    )
    assert response.status_code == 202
    batch = api_client.get(f"/api/trace-scorers/batch/{response.json()['batchId']}").json()
    assert (batch["status"], batch["fanningOut"], batch["succeeded"], batch["ruleId"]) == (
        "finished",
        False,
        3,
        rule["id"],
    )
    assert set(Score.objects.values_list("trace_id", flat=True)) == {t.trace_id for t in old}
    bad = api_client.post(
        f"/api/scoring-rules/{rule['id']}/backfill",
        {"startedAfter": "2026-11-02T00:00:00Z", "startedBefore": "2026-11-01T00:00:00Z"},
        format="json",
    )
    assert (bad.status_code, bad.json()) == (
        400,
        {"detail": "startedAfter must be before startedBefore."},
    )


def test_failed_scores_are_retried_through_the_rule_or_the_batch(api_client, tmp_path):
    (tmp_path / "broken").write_text("x")
    rule = create(api_client, scorerIds=["test-broken-until-fixed"], filter={})
    agent_trace()
    agent_trace()
    assert Score.objects.filter(status="failed").count() == 2
    (tmp_path / "broken").unlink()
    batch_id = Score.objects.first().batch_id
    response = api_client.post(f"/api/trace-scorers/batch/{batch_id}/retry")
    assert (response.status_code, response.json()) == (202, {"count": 1})
    response = api_client.post(f"/api/scoring-rules/{rule['id']}/retry")
    assert (response.status_code, response.json()) == (202, {"count": 1})
    assert set(Score.objects.values_list("status", "attempts")) == {("succeeded", 2)}
    assert api_client.post(f"/api/scoring-rules/{rule['id']}/retry").json() == {"count": 0}
    assert api_client.post("/api/trace-scorers/batch/nope/retry").status_code == 404


def test_a_filter_wide_batch_scores_every_matching_trace(api_client):
    gold = [agent_trace(metadata={"tier": "gold"}) for _ in range(4)]
    agent_trace(metadata={"tier": "free"})
    response = api_client.post(
        "/api/trace-scorers/batch/by-filter",
        {"scorerIds": ["test-answer-length"], "filter": {"metadata": {"tier": "gold"}}},
        format="json",
    )
    assert response.status_code == 202
    assert response["Location"] == reverse("api-batch-detail", args=[response.json()["batchId"]])
    batch = api_client.get(response["Location"]).json()
    assert (batch["traceCount"], batch["succeeded"], batch["status"]) == (4, 4, "finished")
    assert set(Score.objects.values_list("trace_id", flat=True)) == {t.trace_id for t in gold}


def test_the_admin_shows_a_rule_with_its_versions_and_outcomes(admin_client):
    rule = rules.create_rule(name="Tone <b>", scorer_ids=["test-answer-length"], filter={})
    rules.update_rule(rule, scorer_ids=["test-slow"])
    agent_trace()
    page = admin_client.get(reverse("admin:scoring_scoringrule_change", args=[rule.pk]))
    text = page.content.decode()
    assert "Tone &lt;b&gt;" in text
    assert "test-slow" in text and "test-answer-length" in text  # both versions
    assert "1 considered, 1 scored" in text
    outcomes = admin_client.get(
        reverse("admin:scoring_ruleoutcome_changelist"), {"rule__id__exact": rule.pk}
    )
    assert outcomes.status_code == 200
    assert "scored" in outcomes.content.decode()
