"""The admin pages for scores and scoring batches, as a staff member sees them."""

import pytest
from django_q.conf import Conf

from scoring import services
from scoring.models import Score
from tests.factories import agent_trace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    return client


@pytest.fixture
def batch(settings, monkeypatch):
    settings.TRACESCORE_SCORERS = ["scoring.tests.worker_scorers"]
    monkeypatch.setattr(Conf, "SYNC", True)
    traces = [agent_trace(answer="<b>escaped</b> answer"), agent_trace(answer="You get a refund.")]
    return services.start_batch(scorer_id="test-picky", trace_ids=[t.trace_id for t in traces])


def test_the_score_list_shows_scorer_trace_status_and_can_be_searched(admin_client, batch):
    score = Score.objects.get(batch=batch, status="succeeded")
    page = admin_client.get("/admin/scoring/score/").content.decode()
    assert "test-picky" in page and "Succeeded" in page and "Failed" in page
    found = admin_client.get(f"/admin/scoring/score/?q={score.trace_id}").content.decode()
    assert "1 score" in found
    failed = admin_client.get("/admin/scoring/score/?status__exact=failed").content.decode()
    assert "1 score" in failed


def test_a_score_is_read_only_and_escapes_what_was_scored(admin_client, batch):
    score = Score.objects.get(batch=batch, status="succeeded")
    page = admin_client.get(f"/admin/scoring/score/{score.pk}/change/").content.decode()
    assert "<b>escaped</b>" not in page
    assert 'name="_save"' not in page
    assert admin_client.get("/admin/scoring/score/add/").status_code == 403


def test_the_batch_list_shows_progress(admin_client, batch):
    page = admin_client.get("/admin/scoring/scoringbatch/").content.decode()
    assert "1 succeeded, 1 failed, 0 skipped, 0 pending" in page
    scores = admin_client.get(f"/admin/scoring/score/?batch__id__exact={batch.pk}")
    assert "2 scores" in scores.content.decode()
