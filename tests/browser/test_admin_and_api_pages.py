"""Pages we do not write (the admin, DRF's browsable API) also work under the CSP."""

import re

import pytest
from playwright.sync_api import expect

from observability.models import IngestKey
from observability.services import authenticate_ingest_key

pytestmark = pytest.mark.browser


def test_a_staff_member_creates_an_ingest_key_and_sees_it_once(
    page, live_server, transactional_db, django_user_model
):
    django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-123")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "root-pass-123")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/observability/ingestkey/add/")
    page.fill("#id_name", "checkout-agent prod")
    page.click("input[name=_save]")

    expect(page.get_by_text("Copy the new key now, it is shown only this once.")).to_be_visible()
    secret = page.locator("code.ingest-key").inner_text()
    assert re.fullmatch(r"tsk_[\w-]+", secret)
    assert authenticate_ingest_key(secret) == IngestKey.objects.get(name="checkout-agent prod")
    assert not [c for c in page.context.cookies() if secret in c["value"]]

    page.get_by_role("link", name="Back to ingest keys").click()
    expect(page.get_by_role("link", name="checkout-agent prod")).to_be_visible()
    assert secret not in page.content()


def test_the_browsable_api_renders(logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/api/traces")
    expect(page.locator(".response-info")).to_contain_text('"results"')
