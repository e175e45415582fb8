"""The API docs render from this server alone: no CDN, no inline script, network cut off."""

from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def test_the_api_docs_render_and_run_a_call_with_the_network_cut_off(logged_in_page, live_server):
    page = logged_in_page
    requested: list[str] = []
    refused: list[str] = []

    def only_loopback(route):
        url = route.request.url
        requested.append(url)
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in LOOPBACK:
            route.continue_()
        else:
            refused.append(url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_loopback)
    page.goto(f"{live_server.url}/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("tracescore API")
    expect(page.locator('.opblock-post [data-path="/api/trace-scorers/batch"]')).to_be_visible()
    scorers = page.locator('.opblock-get:has([data-path="/api/scorers"]) .opblock-summary-control')
    expect(scorers).to_be_visible()

    # The signed-in session works from the docs: try a call.
    scorers.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")

    assert refused == []
    assert any("/static/drf_spectacular_sidecar/" in url for url in requested)
    assert all(urlparse(url).hostname in LOOPBACK for url in requested if "://" in url)


def test_the_docs_send_an_anonymous_visitor_to_log_in(page, live_server, transactional_db):
    page.goto(f"{live_server.url}/api/docs/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/api/docs/")
    expect(page.locator("h1")).to_have_text("Log in to tracescore")
