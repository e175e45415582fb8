"""Admin pages: traces, spans and logs to inspect (read-only), ingest keys to create and revoke."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from observability.models import IngestKey, LogRecord, Span, Trace
from observability.services import create_ingest_key, revoke_ingest_key
from observability.templatetags.tracescore import duration as _duration

# A trace with more spans than this shows a link to its spans instead of an inline table.
INLINE_SPAN_LIMIT = 200


def _pretty_json(value: Any) -> SafeString:
    """JSON from spans is untrusted text: pretty-printed on the server and escaped."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return format_html('<pre class="json">{}</pre>', text)


def _spans_url(trace_id: str) -> str:
    return f"{reverse('admin:observability_span_changelist')}?trace={trace_id}"


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows written by ingest only: people look, and may delete, but never add or edit."""

    class Media:
        css = {"all": ["tracescore/admin.css"]}  # pre.json, as a class for the CSP

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SpanInline(admin.TabularInline):
    model = Span
    fields = (
        "name",
        "span_type",
        "status",
        "started_at",
        "duration",
        "model",
        "input_tokens",
        "output_tokens",
        "error_message",
    )
    readonly_fields = fields
    ordering = ("started_at", "span_id")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The table shows none of the (possibly large) JSON columns.
        return super().get_queryset(request).defer("input", "output", "attributes", "resource")

    @admin.display(description="Duration")
    def duration(self, span: Span) -> str:
        return _duration(span.duration_ms)


@admin.register(Trace)
class TraceAdmin(ReadOnlyModelAdmin):
    list_display = (
        "display_name",
        "span_type",
        "status",
        "started_at",
        "duration",
        "span_count",
        "has_root",
        "page_link",
    )
    list_filter = ("span_type", "status", ("started_at", admin.DateFieldListFilter))
    search_fields = ("=trace_id", "name")
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "trace_id",
                    "name",
                    "span_type",
                    "status",
                    "error_message",
                    "page_link",
                    "spans_link",
                )
            },
        ),
        (
            "Timing and size",
            {
                "fields": (
                    "started_at",
                    "ended_at",
                    "duration",
                    "span_count",
                    "input_tokens",
                    "output_tokens",
                )
            },
        ),
        (
            "Root span",
            {"fields": ("has_root", "root_span_id", "service_name", "first_seen_at", "updated_at")},
        ),
    )
    readonly_fields = (
        "trace_id",
        "name",
        "span_type",
        "status",
        "error_message",
        "page_link",
        "spans_link",
        "started_at",
        "ended_at",
        "duration",
        "span_count",
        "input_tokens",
        "output_tokens",
        "has_root",
        "root_span_id",
        "service_name",
        "first_seen_at",
        "updated_at",
    )

    def get_inlines(self, request: HttpRequest, obj: Trace | None) -> list:
        if obj is not None and obj.span_count <= INLINE_SPAN_LIMIT:
            return [SpanInline]
        return []

    @admin.display(description="Name", ordering="name")
    def display_name(self, trace: Trace) -> str:
        return trace.name or f"(no root yet) {trace.trace_id}"

    @admin.display(description="Duration", ordering="duration_ms")
    def duration(self, trace: Trace) -> str:
        return _duration(trace.duration_ms)

    @admin.display(description="Trace page")
    def page_link(self, trace: Trace) -> SafeString:
        return format_html('<a href="{}">Open trace</a>', trace.get_absolute_url())

    @admin.display(description="Spans")
    def spans_link(self, trace: Trace) -> SafeString:
        return format_html(
            '<a href="{}">All {} spans</a>', _spans_url(trace.trace_id), trace.span_count
        )


@admin.register(Span)
class SpanAdmin(ReadOnlyModelAdmin):
    list_display = (
        "name",
        "span_type",
        "status",
        "trace_link",
        "started_at",
        "duration",
        "model",
        "input_tokens",
        "output_tokens",
    )
    list_filter = ("span_type", "status", ("started_at", admin.DateFieldListFilter))
    search_fields = ("=trace__trace_id", "=span_id", "name")
    list_select_related = ("trace",)
    show_full_result_count = False
    ordering = ("-started_at", "span_id")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "span_type",
                    "status",
                    "error_message",
                    "trace_link",
                    "span_id",
                    "parent_span_id",
                )
            },
        ),
        ("Timing", {"fields": ("started_at", "ended_at", "duration", "received_at")}),
        ("Model", {"fields": ("model", "input_tokens", "output_tokens")}),
        (
            "Content",
            {"fields": ("input_json", "output_json", "attributes_json", "events_json")},
        ),
        ("Resource", {"fields": ("resource_json",)}),
    )
    readonly_fields = (
        "name",
        "span_type",
        "status",
        "error_message",
        "trace_link",
        "span_id",
        "parent_span_id",
        "started_at",
        "ended_at",
        "duration",
        "received_at",
        "model",
        "input_tokens",
        "output_tokens",
        "input_json",
        "output_json",
        "attributes_json",
        "events_json",
        "resource_json",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("trace")

    @admin.display(description="Trace")
    def trace_link(self, span: Span) -> SafeString:
        url = reverse("admin:observability_trace_change", args=[span.trace_id])
        return format_html('<a href="{}">{}</a>', url, span.trace.name or span.trace_id)

    @admin.display(description="Duration", ordering="duration_ms")
    def duration(self, span: Span) -> str:
        return _duration(span.duration_ms)

    @admin.display(description="Input")
    def input_json(self, span: Span) -> SafeString:
        return _pretty_json(span.input)

    @admin.display(description="Output")
    def output_json(self, span: Span) -> SafeString:
        return _pretty_json(span.output)

    @admin.display(description="Attributes")
    def attributes_json(self, span: Span) -> SafeString:
        return _pretty_json(span.attributes)

    @admin.display(description="Events")
    def events_json(self, span: Span) -> SafeString:
        return _pretty_json(span.events)

    @admin.display(description="Resource")
    def resource_json(self, span: Span) -> SafeString:
        return _pretty_json(span.resource)


@admin.register(LogRecord)
class LogRecordAdmin(ReadOnlyModelAdmin):
    """OTLP log records; search by trace id or span id."""

    list_display = ("time", "severity", "body_preview", "trace_link", "span_id", "scope_name")
    list_filter = (("time", admin.DateFieldListFilter),)
    search_fields = ("span_id",)
    search_help_text = "A trace id (32 hex characters) or a span id (16)."
    show_full_result_count = False
    ordering = ("-time", "-id")
    fields = (
        "trace_link",
        "span_id",
        "time",
        "observed_at",
        "received_at",
        "severity",
        "event_name",
        "scope_name",
        "body_json",
        "attributes_json",
        "resource_json",
    )
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        # Exact ids only: the trace link has no database constraint, so no join.
        term = search_term.strip().lower()
        if not term:
            return queryset, False
        return queryset.filter(Q(trace_id=term) | Q(span_id=term)), False

    @admin.display(description="Severity", ordering="severity_number")
    def severity(self, log: LogRecord) -> str:
        return log.severity_label or "—"

    @admin.display(description="Body")
    def body_preview(self, log: LogRecord) -> str:
        text = log.body if isinstance(log.body, str) else json.dumps(log.body, ensure_ascii=False)
        return text if len(text) <= 120 else text[:119] + "…"

    @admin.display(description="Trace")
    def trace_link(self, log: LogRecord) -> SafeString:
        url = reverse("observability:trace-detail", args=[log.trace_id])
        return format_html('<a href="{}">{}</a>', url, log.trace_id)

    @admin.display(description="Body")
    def body_json(self, log: LogRecord) -> SafeString:
        return _pretty_json(log.body)

    @admin.display(description="Attributes")
    def attributes_json(self, log: LogRecord) -> SafeString:
        return _pretty_json(log.attributes)

    @admin.display(description="Resource")
    def resource_json(self, log: LogRecord) -> SafeString:
        return _pretty_json(log.resource)


class IngestKeyAddForm(forms.ModelForm):
    class Meta:
        model = IngestKey
        fields = ["name"]
        help_texts = {"name": "What the key is for, e.g. 'checkout-agent prod'."}


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


def revoke_ingest_keys(keys: QuerySet) -> int:
    """Revoke every active key of ``keys`` through the service; returns how many were revoked."""
    active = list(keys.filter(revoked_at__isnull=True))
    for key in active:
        revoke_ingest_key(key=key)
    return len(active)


@admin.register(IngestKey)
class IngestKeyAdmin(admin.ModelAdmin):
    """Keys are created here from a name alone; the secret is shown once, then only its prefix.

    Keys are revoked, never edited or deleted, so it stays visible which keys existed.
    """

    list_display = ("name", "prefix_display", "created_at", "last_used_at", "revoked_at", "active")
    list_filter = (RevokedFilter,)
    search_fields = ("name", "prefix")
    actions = ["revoke_selected"]
    readonly_fields = ("name", "prefix_display", "created_at", "last_used_at", "revoked_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = IngestKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: IngestKey | None = None):
        return ("name",) if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: IngestKey | None = None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: IngestKey | None = None) -> bool:
        # A key's page is read-only; the list (and its revoke action) needs the permission.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: IngestKey | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: IngestKey, form, change: bool) -> None:
        if change:  # unreachable: keys are never edited
            return
        key, secret = create_ingest_key(name=form.cleaned_data["name"])
        for field in IngestKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(key, field.attname))
        obj._state.adding, obj._state.db = False, key._state.db
        obj._new_secret = secret  # for response_add only; never saved, never in a cookie

    def response_add(self, request: HttpRequest, obj: IngestKey, post_url_continue=None):
        """The secret, once, in the answer to the POST itself.

        Not in a message (Django keeps messages in a signed, readable cookie)
        and not in the session: it is stored nowhere but in the exporter that
        gets it. The page is never cached (the admin's views send no-store).
        """
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Ingest key created",
            "key": obj,
            "secret": obj._new_secret,
        }
        return TemplateResponse(request, "admin/observability/ingestkey/created.html", context)

    @admin.display(description="Key starts with", ordering="prefix")
    def prefix_display(self, key: IngestKey) -> str:
        return f"{key.prefix}…"

    @admin.display(description="Active", boolean=True)
    def active(self, key: IngestKey) -> bool:
        return key.is_active

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = revoke_ingest_keys(queryset)
        already = queryset.count() - revoked
        text = f"Revoked {revoked} key{'s' if revoked != 1 else ''}"
        text += "; exporters using them get 401 from their next request." if revoked else "."
        if already:
            text += f" {already} {'was' if already == 1 else 'were'} already revoked."
        self.message_user(request, text, messages.SUCCESS)
