"""Production security settings, from the environment documented in docs/deploy.md.

``manage.py check --deploy`` runs with exactly the documented lines, and a
real gunicorn started with them shows what a browser gets: HTTPS redirects,
HSTS, Secure cookies, a trusted proxy header and the Content-Security-Policy.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
import requests

from tests.live_server import run_gunicorn
from tests.worker import ROOT

DEPLOY_DOC = ROOT / "docs" / "deploy.md"
HOST = "tracescore.example.com"


def documented_production_environment() -> dict[str, str]:
    """The ``export`` lines of the block marked production-environment in docs/deploy.md."""
    text = DEPLOY_DOC.read_text()
    block = re.search(r"<!-- production-environment.*?```sh\n(.*?)```", text, re.S).group(1)
    env = {}
    for line in block.splitlines():
        name, value = re.match(r"export (\w+)=(\S+)", line).groups()
        env[name] = value
    # The documented SECRET_KEY comes from a file; any strong key stands in for it.
    assert env["SECRET_KEY"].startswith('"$(cat')
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def base_environment() -> dict[str, str]:
    """This process's environment without anything that would change the settings."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH"}
    return {k: v for k, v in os.environ.items() if k in keep}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base_environment(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_environment():
    env = documented_production_environment()
    assert env["DEBUG"] == "false"
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_when_a_documented_setting_is_left_out():
    env = documented_production_environment()
    del env["SECURE_HSTS_SECONDS"]
    result = check_deploy(env)
    assert result.returncode == 1
    assert "security.W004" in result.stderr


@pytest.fixture
def production_server(transactional_db, tmp_path, django_user_model):
    django_user_model.objects.create_user("alice", "alice@example.com", "alice-pass-123")
    env = documented_production_environment()
    # The test's own database and broker, not the documented examples.
    del env["DATABASE_URL"], env["REDIS_URL"]
    # gunicorn itself trusts X-Forwarded-Proto from loopback; here the proxy is
    # "another machine", so only TRUST_X_FORWARDED_PROTO can make Django trust it.
    env["FORWARDED_ALLOW_IPS"] = "192.0.2.1"
    with run_gunicorn(tmp_path / "gunicorn.log", **env) as server:
        yield server


def get(server, path: str, *, https: bool = True, **kwargs) -> requests.Response:
    headers = {"Host": HOST, **({"X-Forwarded-Proto": "https"} if https else {})}
    return requests.get(
        f"{server.url}{path}", headers=headers, allow_redirects=False, timeout=30, **kwargs
    )


def test_behind_a_trusted_proxy_https_pages_get_hsts_csp_and_secure_cookies(production_server):
    plain = get(production_server, "/login/", https=False)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{HOST}/login/"
    # Load balancers probe /healthz over plain HTTP.
    health = requests.get(f"{production_server.url}/healthz", headers={"Host": HOST}, timeout=30)
    assert health.status_code == 200

    page = get(production_server, "/login/")
    assert page.status_code == 200, production_server.log()
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    csrf_cookie = page.headers["Set-Cookie"]
    assert csrf_cookie.startswith("csrftoken=") and "Secure" in csrf_cookie

    token = page.cookies["csrftoken"]
    login = requests.post(
        f"{production_server.url}/login/",
        data={"username": "alice", "password": "alice-pass-123", "csrfmiddlewaretoken": token},
        headers={
            "Host": HOST,
            "X-Forwarded-Proto": "https",
            "Origin": f"https://{HOST}",
            "Referer": f"https://{HOST}/login/",
            "Cookie": f"csrftoken={token}",
        },
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code == 302, login.text
    session_cookie = next(c for c in login.raw.headers.getlist("Set-Cookie") if "sessionid=" in c)
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie
