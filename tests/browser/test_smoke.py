"""A person logs in through the real form and lands on the trace list."""

import pytest
from playwright.sync_api import expect

from tests.factories import agent_trace

pytestmark = pytest.mark.browser


def test_login_form_leads_to_the_trace_list(logged_in_page, artifacts):
    page = logged_in_page
    agent_trace(name="refund-agent")
    page.reload()
    expect(page.locator("h1")).to_have_text("Traces")
    expect(page.get_by_role("link", name="refund-agent")).to_be_visible()
    expect(page.get_by_text("alice")).to_be_visible()
    page.screenshot(path=str(artifacts / "smoke-trace-list.png"), full_page=True)
