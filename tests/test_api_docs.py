"""The API schema and Swagger UI: only for signed-in users and token holders, served from here."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

SCHEMA = "/api/schema/"
DOCS = "/api/docs/"


def test_an_anonymous_caller_gets_401_json_for_the_schema(anon_api_client):
    response = anon_api_client.get(SCHEMA)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert "credentials were not provided" in response.json()["detail"]


def test_a_token_or_a_session_reads_the_schema(api_client, alice_client):
    by_token = api_client.get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert by_token.status_code == 200
    assert "/api/trace-scorers/batch" in by_token.json()["paths"]
    by_session = alice_client.get(SCHEMA)
    assert by_session.status_code == 200
    assert b"/api/trace-scorers/batch" in by_session.content


def test_an_anonymous_visitor_of_the_docs_is_sent_to_log_in(client):
    response = client.get(DOCS)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={DOCS}"


def test_a_wrong_token_gets_401_for_the_docs(anon_api_client):
    anon_api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert anon_api_client.get(DOCS).status_code == 401
    assert anon_api_client.get(SCHEMA).status_code == 401


def test_the_docs_load_swagger_ui_from_our_static_files_and_no_inline_script(alice_client):
    response = alice_client.get(DOCS)
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts, html
    # Every script is a file of ours; none is inline, none from another host.
    for tag in scripts:
        src = re.search(r'src="([^"]+)"', tag)
        assert src, f"inline script: {tag}"
        assert src.group(1).startswith("/"), tag
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "<style" not in html and "style=" not in html
    assert "cdn.jsdelivr" not in html and "https://" not in html

    init = alice_client.get(f"{DOCS}?script=")
    assert init.status_code == 200
    assert init["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in init.content.decode()
    # Swagger UI must not call the public validator service.
    assert '"validatorUrl": null' in init.content.decode()


def test_a_token_holder_can_fetch_the_docs_page(api_client):
    response = api_client.get(DOCS)
    assert response.status_code == 200
    assert b'id="swagger-ui"' in response.content
