from django.contrib import admin

from observability.models import IngestKey, Span, Trace

admin.site.register(Trace)
admin.site.register(Span)
admin.site.register(IngestKey)
