"""WSGI entry point: `gunicorn tracescore.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracescore.settings")

application = get_wsgi_application()
