from django.contrib import admin

from scoring.models import Score, ScoringBatch

admin.site.register(Score)
admin.site.register(ScoringBatch)
