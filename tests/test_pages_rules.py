"""Rule pages, "Select all matching" and the batch page, as a signed-in user sees them."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from scoring import rules
from scoring.models import RuleOutcome, Score, ScoringBatch, ScoringRule
from tests.factories import EVIL, agent_trace
from tests.factories import make_score as add_score

pytestmark = pytest.mark.django_db


def make_rule(**fields) -> ScoringRule:
    fields.setdefault("name", "Answer quality")
    fields.setdefault("scorer_ids", ["completeness"])
    fields.setdefault("filter", {"name": "support"})
    return rules.create_rule(**fields)


def outcome(rule, trace, kind, reason="", score=None) -> RuleOutcome:
    """An audit row as the engine leaves it."""
    return RuleOutcome.objects.create(
        rule=rule, rule_version=rule.version, trace=trace, outcome=kind, reason=reason, score=score
    )


RULE_FORM = {
    "name": "Answer quality",
    "scorer_ids": ["completeness", "error-free"],
    "filter_name": "support",
    "filter_type": "agent_run",
    "filter_status": "",
    "filter_service": "shop-support",
    "filter_metadata": "env=prod\ntier = gold",
    "min_duration_ms": "100",
    "max_duration_ms": "",
    "target": "trace",
    "sample_rate": "10",
    "live": "on",
    "active": "on",
    "max_cost_usd": "2.50",
}


def test_the_rules_pages_need_a_login(client):
    rule = make_rule()
    for url in ("/rules/", "/rules/new/", f"/rules/{rule.pk}/", f"/rules/{rule.pk}/edit/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_every_page_has_a_rules_link_in_the_navigation(alice_client):
    html = alice_client.get("/traces/").content.decode()
    assert '<a href="/rules/"' in html and ">Rules</a>" in html


def test_the_rule_list_shows_each_rule_with_scorers_target_rate_state_and_counts(alice_client):
    live = make_rule(scorer_ids=["completeness", "error-free"], sample_rate=0.1)
    make_rule(name="Tool calls", target="tool_call", live=False, active=False)
    for kind in ("scored", "scored", "sampled_out", "failed"):
        outcome(live, agent_trace(), kind)
    html = alice_client.get("/rules/").content.decode()
    row = html.split(f'data-rule-id="{live.pk}"')[1].split("</tr>")[0]
    assert "Answer quality" in row and "Completeness, Error free" in row
    assert "name contains “support”" in row
    assert "whole trace" in row and "10 %" in row
    assert "active" in row and "live" in row
    counts = re.findall(r'<td class="num">(\d+)</td>', row)
    assert counts == ["4", "2", "1", "0", "1", "0"]
    paused = html.split("Tool calls")[1].split("</tr>")[0]
    assert "paused" in paused and "every Tool call" in paused


def test_the_rule_list_costs_a_fixed_number_of_queries(alice_client, django_assert_num_queries):
    for i in range(5):
        rule = make_rule(name=f"rule {i}")
        outcome(rule, agent_trace(), "scored")
    # session, user, rules, their outcome counts
    with django_assert_num_queries(4):
        alice_client.get("/rules/")


def test_a_rule_name_and_filter_show_as_text(alice_client):
    rule = make_rule(name=EVIL, filter={"name": EVIL, "metadata": {"<i>env</i>": EVIL}})
    for url in ("/rules/", f"/rules/{rule.pk}/", f"/rules/{rule.pk}/edit/"):
        html = alice_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_new_rule_form_creates_a_rule_and_shows_it(alice_client, alice):
    response = alice_client.post("/rules/new/", RULE_FORM)
    rule = ScoringRule.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/rules/{rule.pk}/"
    assert rule.scorer_ids == ["completeness", "error-free"]
    assert rule.filter == {
        "name": "support",
        "type": "agent_run",
        "service": "shop-support",
        "metadata": {"env": "prod", "tier": "gold"},
        "minDurationMs": 100.0,
    }
    assert rule.sample_rate == pytest.approx(0.1)
    assert rule.max_cost_usd == pytest.approx(2.5)
    assert rule.live and rule.active and rule.version == 1 and rule.created_by == alice
    html = alice_client.get(response["Location"]).content.decode()
    assert "Rule &#x27;Answer quality&#x27; created." in html
    assert "metadata env = “prod”" in html and "10 %" in html and "$2.50" in html


def test_the_new_rule_form_is_prefilled_from_the_trace_lists_filter(alice_client):
    html = alice_client.get(
        "/rules/new/?name=support&type=agent_run&metadata=env%3Dprod&min_duration_ms=100"
    ).content.decode()
    assert 'name="filter_name" value="support"' in html
    assert '<option value="agent_run" selected>' in html
    assert "env=prod</textarea>" in html
    assert 'name="min_duration_ms" value="100' in html


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scorer_ids": []}, "Choose at least one scorer."),
        ({"scorer_ids": ["no-such-scorer"]}, "Select a valid choice."),
        ({"sample_rate": "150"}, "less than or equal to 100"),
        ({"sample_rate": "ten"}, "Enter a number."),
        ({"filter_metadata": "no equals sign"}, "Write metadata as key=value"),
        ({"min_duration_ms": "500", "max_duration_ms": "10"}, "below the min duration"),
        ({"max_cost_usd": "-1"}, "greater than or equal to 0"),
        ({"target": "bogus"}, "Select a valid choice."),
        ({"name": ""}, "This field is required."),
    ],
)
def test_bad_input_shows_the_form_again_with_the_error(alice_client, change, message):
    response = alice_client.post("/rules/new/", {**RULE_FORM, **change})
    html = response.content.decode()
    assert response.status_code == 400
    assert "The rule was not saved" in html and message in html
    assert 'value="Answer quality"' in html or not change.get("name", True)
    assert not ScoringRule.objects.exists()


def test_an_error_from_the_rule_service_shows_on_the_form(alice_client):
    response = alice_client.post("/rules/new/", {**RULE_FORM, "filter_name": "x" * 600})
    assert response.status_code == 400
    assert "The rule was not saved" in response.content.decode()


def test_editing_a_rules_filter_makes_a_new_version(alice_client):
    rule = make_rule(sample_rate=0.5)
    form = alice_client.get(f"/rules/{rule.pk}/edit/").content.decode()
    assert 'value="Answer quality"' in form and 'name="sample_rate" value="50' in form
    assert 'name="filter_name" value="support"' in form
    response = alice_client.post(
        f"/rules/{rule.pk}/edit/", {**RULE_FORM, "filter_name": "research", "sample_rate": "50"}
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.filter["name"] == "research" and rule.version == 2
    html = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    assert "saved (version 2)" in html


def test_editing_with_bad_input_keeps_the_rule_as_it_was(alice_client):
    rule = make_rule()
    response = alice_client.post(f"/rules/{rule.pk}/edit/", {**RULE_FORM, "sample_rate": "-5"})
    assert response.status_code == 400
    rule.refresh_from_db()
    assert rule.sample_rate == 1.0 and rule.version == 1


def test_an_unknown_rule_is_a_404(alice_client):
    for url in ("/rules/999/", "/rules/999/edit/", "/rules/999/delete/"):
        assert alice_client.get(url).status_code == 404


def test_the_rule_page_shows_counts_per_outcome_each_linking_to_its_audit(alice_client):
    rule = make_rule(sample_rate=0.1)
    scored_trace = agent_trace(name="scored-one")
    score = add_score(scored_trace, score=0.82, rule=rule, rule_version=1)
    outcome(rule, scored_trace, "scored", score=score)
    outcome(rule, agent_trace(name="sampled-one"), "sampled_out", "sampled out at 10 %")
    outcome(rule, agent_trace(name="skipped-one"), "skipped", "no span of type tool call")
    outcome(rule, agent_trace(name="failed-one"), "failed", "judge timed out")
    html = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    for key, count in [("considered", 4), ("scored", 1), ("sampled_out", 1), ("failed", 1)]:
        item = html.split(f'data-outcome="{key}"')[1].split("</li>")[0]
        assert f"<strong>{count}</strong>" in item
    assert 'href="?outcome=sampled_out#audit"' in html
    assert "sampled out at 10 %" in html and "no span of type tool call" in html
    assert f'href="/traces/{scored_trace.trace_id}/#score-{score.pk}"' in html
    assert "0.82</a>" in html
    assert "Retry" not in html  # a failed outcome, but no failed Score to queue again
    assert "Pause" in html and "Run on existing traces" in html


def test_the_audit_filters_by_outcome(alice_client):
    rule = make_rule()
    outcome(rule, agent_trace(name="sampled-one"), "sampled_out", "sampled out at 10 %")
    outcome(rule, agent_trace(name="failed-one"), "failed", "judge timed out")
    html = alice_client.get(f"/rules/{rule.pk}/?outcome=failed").content.decode()
    audit = html.split('id="audit"')[1]
    assert "judge timed out" in audit and "sampled out at 10 %" not in audit
    partial = alice_client.get(
        f"/rules/{rule.pk}/?outcome=sampled_out", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in partial and "sampled out at 10 %" in partial
    assert "judge timed out" not in partial


def test_an_unknown_outcome_shows_the_whole_audit_with_a_message(alice_client):
    rule = make_rule()
    outcome(rule, agent_trace(), "failed", "judge timed out")
    response = alice_client.get(f"/rules/{rule.pk}/?outcome={EVIL}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "There is no outcome" in html and "judge timed out" in html
    assert "<script>alert(1)" not in html


def test_the_audit_is_paged(alice_client):
    rule = make_rule()
    for i in range(55):
        outcome(rule, agent_trace(name=f"trace-{i:02d}"), "sampled_out", f"reason {i:02d}")
    first = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    assert first.count('class="audit-row"') == 50 and "page 1 of 2" in first
    second = alice_client.get(f"/rules/{rule.pk}/?page=2").content.decode()
    assert second.count('class="audit-row"') == 5


def test_untrusted_reasons_and_trace_names_show_as_text_in_the_audit(alice_client):
    rule = make_rule()
    outcome(rule, agent_trace(name=EVIL), "failed", EVIL)
    html = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2


def test_pausing_and_resuming_a_rule(alice_client):
    rule = make_rule()
    response = alice_client.post(f"/rules/{rule.pk}/active/", {"active": "0"})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert not rule.active
    html = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    assert "paused." in html and 'id="resume-rule"' in html and "Paused" in html
    alice_client.post(f"/rules/{rule.pk}/active/", {"active": "1"})
    rule.refresh_from_db()
    assert rule.active
    assert alice_client.get(f"/rules/{rule.pk}/active/").status_code == 405


def test_run_on_existing_traces_starts_a_backfill_and_shows_its_batch(alice_client, sync_tasks):
    rule = make_rule()
    old = timezone.now() - timedelta(days=3)
    matching = [agent_trace(name=f"support-{i}") for i in range(3)]
    agent_trace(name="support-old", started_at=old)
    agent_trace(name="research")
    after = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    with sync_tasks(execute=True):
        response = alice_client.post(f"/rules/{rule.pk}/backfill/", {"started_after": after})
    batch = ScoringBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    assert batch.rule == rule
    page = alice_client.get(response["Location"]).content.decode()
    assert "Rule Answer quality on existing traces" in page
    assert "3 done / 0 failed / 3 total" in page
    considered = set(RuleOutcome.objects.filter(rule=rule).values_list("trace_id", flat=True))
    assert considered == {t.trace_id for t in matching}
    detail = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    assert "<strong>3</strong>" in detail.split('data-outcome="scored"')[1].split("</li>")[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"started_after": "yesterday"}, "Enter a valid date/time."),
        (
            {"started_after": "2026-11-20T10:00", "started_before": "2026-11-19T10:00"},
            "later than",
        ),
        ({"limit": "0"}, "greater than or equal to 1"),
        ({"limit": "many"}, "Enter a whole number."),
    ],
)
def test_a_bad_backfill_request_shows_the_rule_page_with_the_error(alice_client, data, message):
    rule = make_rule()
    response = alice_client.post(f"/rules/{rule.pk}/backfill/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Run on existing traces" in response.content.decode()
    assert not ScoringBatch.objects.exists()


def test_retry_failed_on_a_rule_queues_its_failed_scores_again(alice_client):
    rule = make_rule(scorer_ids=["completeness", "error-free"])
    trace = agent_trace()
    batch = ScoringBatch.objects.create(scorer_id="completeness", rule=rule, score_count=2)
    failed = add_score(trace, score=None, status="failed", error="boom", rule=rule, batch=batch)
    add_score(
        trace, "error-free", score=None, status="failed", error="boom", rule=rule, batch=batch
    )
    RuleOutcome.objects.create(
        rule=rule, trace=trace, outcome="failed", reason="boom", score=failed, batch=batch
    )
    html = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    assert "Retry 2 failed" in html  # two Scores, one trace
    response = alice_client.post(f"/rules/{rule.pk}/retry/")
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.error == ""
    html = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    assert "2 failed scores queued again." in html
    assert "Retry" not in html
    assert "<strong>1</strong>" in html.split('data-outcome="pending"')[1].split("</li>")[0]


def test_no_retry_button_without_failures(alice_client):
    rule = make_rule()
    outcome(rule, agent_trace(), "scored")
    assert "Retry" not in alice_client.get(f"/rules/{rule.pk}/").content.decode()


def test_deleting_a_rule_asks_first(alice_client):
    rule = make_rule(name=EVIL)
    confirm = alice_client.get(f"/rules/{rule.pk}/delete/").content.decode()
    assert "Delete rule" in confirm and "<script>alert(1)" not in confirm
    assert ScoringRule.objects.exists()
    response = alice_client.post(f"/rules/{rule.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/rules/"
    assert not ScoringRule.objects.exists()
    html = alice_client.get("/rules/").content.decode()
    assert "deleted." in html and "No rules yet" in html


def test_the_batch_page_shows_progress_and_retries_its_failed_scores(alice_client):
    trace = agent_trace()
    batch = ScoringBatch.objects.create(
        scorer_id="completeness", scorer_ids=["completeness"], trace_count=2, score_count=2
    )
    add_score(trace, batch=batch, score=0.5)
    failed = add_score(agent_trace(), batch=batch, score=None, status="failed", error="boom")
    html = alice_client.get(f"/batches/{batch.pk}/").content.decode()
    assert "2 done / 1 failed / 2 total" in html and "Retry 1 failed" in html
    assert "every 1s" not in html  # nothing pending: no polling
    response = alice_client.post(f"/batches/{batch.pk}/retry/")
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    failed.refresh_from_db()
    assert failed.status == "pending"
    html = alice_client.get(f"/batches/{batch.pk}/").content.decode()
    assert "1 failed score queued again." in html
    assert "every 1s" in html and "on_page=1" in html  # the progress polls again
    assert "Retry 1 failed" not in html


def test_the_progress_partial_offers_retry_and_the_batch_page(alice_client):
    batch = ScoringBatch.objects.create(scorer_id="completeness", trace_count=1, score_count=1)
    add_score(agent_trace(), batch=batch, score=None, status="failed", error="boom")
    html = alice_client.get(f"/batches/{batch.pk}/progress/?poll=1").content.decode()
    assert "Retry 1 failed" in html and f'href="/batches/{batch.pk}/"' in html


def test_the_trace_list_offers_select_all_matching_with_its_filter(alice_client):
    agent_trace(name="support-1")
    html = alice_client.get("/traces/?name=support&cursor=").content.decode()
    assert 'id="select-matching" href="/batches/matching/?name=support"' in html
    assert 'hx-get="/batches/matching/count/?name=support" hx-trigger="load"' in html
    assert "traces matching this filter</a>" in html


def test_the_matching_count_is_one_count_query(alice_client, django_assert_num_queries):
    for i in range(3):
        agent_trace(name=f"support-{i}")
    agent_trace(name="research")
    # session, user, the count
    with django_assert_num_queries(3):
        response = alice_client.get("/batches/matching/count/?name=support&cursor=x")
    assert response.content.decode() == "3"
    assert alice_client.get("/batches/matching/count/").content.decode() == "4"
    broken = alice_client.get("/batches/matching/count/?type=bogus")
    assert broken.status_code == 200 and broken.content.decode() == ""


def test_select_all_matching_shows_the_count_and_save_as_rule(
    alice_client, django_assert_num_queries
):
    for i in range(3):
        agent_trace(name=f"support-{i}", metadata={"env": "prod"})
    agent_trace(name="support-dev", metadata={"env": "dev"})
    agent_trace(name="research")
    url = "/batches/matching/?name=support&metadata=env%3Dprod"
    # session, user, the count
    with django_assert_num_queries(3):
        response = alice_client.get(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "All 3 matching traces selected" in html
    assert "name contains “support”, metadata env = “prod”" in html
    assert 'href="/rules/new/?name=support&amp;metadata=env%3Dprod"' in html
    assert "Score 3 traces" in html
    # Without JavaScript the same is a page.
    assert "<html" in alice_client.get(url).content.decode()


def test_score_now_starts_a_filtered_batch_and_goes_to_its_page(alice_client, sync_tasks):
    support = [agent_trace(name=f"support-{i}") for i in range(4)]
    agent_trace(name="research")
    data = {"name": "support", "scorer_ids": ["completeness"], "target": "trace"}
    with sync_tasks(execute=True):
        response = alice_client.post(
            "/batches/matching/", {**data, "sample_rate": "100"}, HTTP_HX_REQUEST="true"
        )
    batch = ScoringBatch.objects.get()
    assert response.status_code == 204 and response["HX-Redirect"] == f"/batches/{batch.pk}/"
    assert batch.filter == {"name": "support"}
    scored = set(Score.objects.values_list("trace_id", flat=True))
    assert scored == {t.trace_id for t in support}
    page = alice_client.get(f"/batches/{batch.pk}/").content.decode()
    assert "4 done / 0 failed / 4 total" in page and "name contains “support”" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scorer_ids": [], "sample_rate": "100"}, "Choose at least one scorer."),
        ({"scorer_ids": ["completeness"], "sample_rate": "101"}, "less than or equal to 100"),
        ({"scorer_ids": ["completeness"], "sample_rate": "50", "max_cost_usd": "x"}, "number"),
    ],
)
def test_score_now_with_bad_input_shows_the_modal_again(alice_client, data, message):
    agent_trace(name="support-1")
    response = alice_client.post(
        "/batches/matching/",
        {"name": "support", "target": "trace", **data},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html and "All 1 matching trace selected" in html
    assert 'name="name" value="support"' in html  # the filter is kept
    assert not ScoringBatch.objects.exists()


def test_a_filter_that_cannot_be_used_is_a_clear_400(alice_client):
    response = alice_client.get("/batches/matching/?type=bogus", HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "This filter cannot be used" in response.content.decode()


def test_the_trace_page_says_what_each_rule_did_with_the_trace(alice_client):
    trace = agent_trace(name="support-agent")
    sampled = make_rule(name="Answer quality", sample_rate=0.1)
    scored = make_rule(name=EVIL)
    skipped = make_rule(name="Tool use", target="tool_call")
    failed = make_rule(name="Judge")
    make_rule(name="Research only", filter={"name": "research"})
    score = add_score(trace, score=0.82, rule=scored, rule_version=1)
    outcome(sampled, trace, "sampled_out", "sampled out at 10 %")
    outcome(scored, trace, "scored", score=score)
    outcome(skipped, trace, "skipped", "no span of type tool call")
    outcome(failed, trace, "failed", "the judge timed out")
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    section = html.split('id="rules"')[1]
    assert "<em>Answer quality</em></a>" in section and "sampled out at 10 %" in section
    assert f'href="#score-{score.pk}" class="rule-score-link">scored 0.82</a>' in section
    assert f'id="score-{score.pk}"' in html
    assert "skipped: no span of type tool call" in section
    assert "failed: the judge timed out" in section
    assert "<em>Research only</em></a>" in section and "not matched" in section
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in section
    assert "Matched no live rule" not in section


def test_the_trace_page_says_when_it_matched_no_live_rule(alice_client):
    trace = agent_trace(name="support-agent")
    make_rule(name="Research only", filter={"name": "research"})
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "Matched no live rule." in html
    assert "not matched" in html.split('id="rules"')[1]


def test_a_score_notes_the_spans_that_arrived_after_it(alice_client, transactional_db):
    # transactional_db: PostgreSQL's now() is the transaction's start, so each
    # ingest must commit on its own for its spans to arrive after the score.
    from observability.services import ingest_spans
    from tests.factories import span

    trace = agent_trace(name="support-agent")
    read_at = timezone.now()
    score = add_score(trace, score=0.5, started_at=read_at, finished_at=read_at)
    ingest_spans([span(trace.trace_id, parent_span_id=trace.root_span_id) for _ in range(3)])
    assert rules.late_spans(score) == 3
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "3 spans arrived after scoring" in html
    fresh = add_score(trace, score=0.6, scorer_id="error-free")
    assert rules.late_spans(fresh) == 0
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert html.count("arrived after scoring") == 1


def test_select_all_matching_keeps_the_lists_time_range(alice_client, sync_tasks):
    recent = [agent_trace(name=f"support-{i}") for i in range(2)]
    agent_trace(name="support-old", started_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    html = alice_client.get(
        f"/batches/matching/?name=support&started_after={since}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "All 2 matching traces selected" in html
    assert f"started from {since} 00:00" in html
    assert "A rule has no time range" in html
    with sync_tasks(execute=True):
        alice_client.post(
            "/batches/matching/",
            {
                "name": "support",
                "started_after": since,
                "scorer_ids": ["completeness"],
                "target": "trace",
                "sample_rate": "100",
            },
        )
    scored = set(Score.objects.values_list("trace_id", flat=True))
    assert scored == {t.trace_id for t in recent}


def test_select_all_matching_with_a_broken_date_is_a_clear_400(alice_client):
    response = alice_client.get("/batches/matching/?started_after=soon", HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "started_after: Enter an ISO 8601 date" in response.content.decode()


def test_select_all_matching_with_nothing_matching_cannot_score(alice_client):
    agent_trace(name="support-1")
    html = alice_client.get("/batches/matching/?name=nothing", HTTP_HX_REQUEST="true")
    assert "No trace matches this filter" in html.content.decode()
    assert 'id="score-matching" disabled' in html.content.decode()


def test_a_new_rule_form_with_an_unusable_filter_says_so(alice_client):
    response = alice_client.get("/rules/new/?type=bogus")
    assert response.status_code == 200
    assert "could not be used" in response.content.decode()


@pytest.mark.parametrize("size", [1, 30])
def test_the_rule_page_costs_a_fixed_number_of_queries(
    alice_client, django_assert_num_queries, size
):
    rule = make_rule()
    for _ in range(size):
        trace = agent_trace()
        score = add_score(trace, rule=rule, rule_version=1)
        outcome(rule, trace, "scored", score=score)
    # session, user, the rule, its outcome counts, its failed Scores, the audit's count and
    # page (with traces and scores), its last runs
    with django_assert_num_queries(8):
        html = alice_client.get(f"/rules/{rule.pk}/").content.decode()
    assert html.count('class="audit-row"') == size
