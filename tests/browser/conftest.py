"""Browser tests: Playwright for Python driving Debian's Chromium.

``playwright install`` cannot download browsers here, so we launch the system
Chromium through ``executable_path``. Without it the tests skip on a developer
machine and fail in CI (``CI`` set), so CI never passes without running them.
"""

import os
import shutil
from pathlib import Path

import pytest

# Sync Playwright keeps an event loop running in the main thread; Django's
# async-safety check would otherwise refuse the ORM calls our tests make.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def find_chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "chromium", "chromium-browser"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        message = "Chromium not found: apt-get install chromium (or set CHROMIUM_PATH)."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, chromium_path):
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def logged_in_page(page, live_server, transactional_db, django_user_model):
    """A page signed in through the real login form as alice."""
    django_user_model.objects.create_user("alice", "alice@example.com", "alice-pass-123")
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/traces/")
    return page


@pytest.fixture(autouse=True)
def no_csp_violations(request):
    """Every browser test fails if the page broke its Content-Security-Policy.

    Chromium reports each blocked inline script, style or eval on the console.
    """
    if "page" not in request.fixturenames:
        yield []
        return
    page = request.getfixturevalue("page")
    violations: list[str] = []

    def record(message) -> None:
        if "Content Security Policy" in message.text:
            where = message.location.get("url", "")
            violations.append(f"on {page.url} (from {where}): {message.text}")

    page.on("console", record)
    yield violations
    assert not violations, "CSP violations:\n" + "\n".join(violations)
