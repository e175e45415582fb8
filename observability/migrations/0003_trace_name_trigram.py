"""Trigram index for "name contains" searches on PostgreSQL.

`name__icontains` compiles to `UPPER(name::text) LIKE UPPER('%…%')`; a GIN
trigram index on that expression answers it without scanning every trace.
Skipped on SQLite, and where the database user may not create the pg_trgm
extension (the search then still works, only slower).
"""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS trace_name_trgm_idx "
    'ON observability_trace USING gin ((UPPER("name"::text)) gin_trgm_ops)'
)


def create_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            cursor.execute("SAVEPOINT trgm")
            try:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except Exception:
                cursor.execute("ROLLBACK TO SAVEPOINT trgm")
                return
            cursor.execute("RELEASE SAVEPOINT trgm")
        cursor.execute(CREATE)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS trace_name_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("observability", "0002_span_started_index")]

    operations = [migrations.RunPython(create_index, drop_index)]
