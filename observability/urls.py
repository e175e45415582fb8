from django.urls import path

from observability import views

app_name = "observability"

urlpatterns = [
    path("traces/", views.trace_list, name="trace-list"),
    path("traces/<str:trace_id>/", views.trace_detail, name="trace-detail"),
]
