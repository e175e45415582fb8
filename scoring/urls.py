from django.urls import path

from scoring import views

app_name = "scoring"

urlpatterns = [
    path("scorers/", views.scorer_list, name="scorer-list"),
    path("scorers/<str:scorer_id>/results/", views.scorer_results, name="scorer-results"),
    path("batches/new/", views.batch_new, name="batch-new"),
    path("batches/<uuid:batch_id>/progress/", views.batch_progress, name="batch-progress"),
]
