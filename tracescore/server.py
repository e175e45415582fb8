"""The production web server command, in one place.

``manage.py start`` (what ``make run`` runs), the live-server tests and the
ingest benchmark all start this command; the README shows it, and a test keeps
the README's line equal to it. Why this server: docs/deploy.md.
"""

from __future__ import annotations

from pathlib import Path

# gunicorn manages the processes; each runs uvicorn's event loop, which reads
# request bodies without holding a thread, and hands Django's ASGI handler
# (tracescore.asgi) only complete requests.
APP = "tracescore.asgi"
WORKER_CLASS = "uvicorn_worker.UvicornWorker"
DEFAULT_WORKERS = 2


def gunicorn_command(
    bind: str, *, workers: int = DEFAULT_WORKERS, bin_dir: str | Path = ".venv/bin"
) -> list[str]:
    """The argument list of the production web server bound to ``bind``."""
    return [
        str(Path(bin_dir) / "gunicorn"),
        APP,
        "--worker-class",
        WORKER_CLASS,
        "--workers",
        str(workers),
        "--bind",
        bind,
    ]
