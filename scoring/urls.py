from django.urls import path

from scoring import views, views_rules

app_name = "scoring"

urlpatterns = [
    path("scorers/", views.scorer_list, name="scorer-list"),
    path("scorers/<str:scorer_id>/results/", views.scorer_results, name="scorer-results"),
    path("batches/new/", views.batch_new, name="batch-new"),
    path("batches/<uuid:batch_id>/progress/", views.batch_progress, name="batch-progress"),
    path("batches/<uuid:batch_id>/", views_rules.batch_detail, name="batch-detail"),
    path("batches/<uuid:batch_id>/retry/", views_rules.batch_retry, name="batch-retry"),
    path("batches/matching/", views_rules.matching_batch, name="matching-batch"),
    path("batches/matching/count/", views_rules.matching_count, name="matching-count"),
    path("rules/", views_rules.rule_list, name="rule-list"),
    path("rules/new/", views_rules.rule_new, name="rule-new"),
    path("rules/<int:pk>/", views_rules.rule_detail, name="rule-detail"),
    path("rules/<int:pk>/edit/", views_rules.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/active/", views_rules.rule_active, name="rule-active"),
    path("rules/<int:pk>/backfill/", views_rules.rule_backfill, name="rule-backfill"),
    path("rules/<int:pk>/retry/", views_rules.rule_retry, name="rule-retry"),
    path("rules/<int:pk>/delete/", views_rules.rule_delete, name="rule-delete"),
]
