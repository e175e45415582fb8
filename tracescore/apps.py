from django.apps import AppConfig


class TracescoreConfig(AppConfig):
    name = "tracescore"
    verbose_name = "tracescore"
