from django.urls import path

from scoring import views

app_name = "scoring"

urlpatterns = [
    path("scorers/", views.scorer_list, name="scorer-list"),
]
