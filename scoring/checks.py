"""Start-up checks of the time limits scoring relies on (run by ``manage.py check``)."""

from django.conf import settings
from django.core.checks import Warning, register


@register("scoring")
def scoring_time_limits(app_configs, **kwargs) -> list[Warning]:
    """The scorer limit below the task limit, the lease above it."""
    task_timeout = settings.Q_CLUSTER.get("timeout")
    if not task_timeout:
        return []
    scorer_timeout = settings.TRACESCORE_SCORER_TIMEOUT
    lease = settings.TRACESCORE_SCORE_LEASE
    found = []
    if scorer_timeout >= task_timeout:
        found.append(
            Warning(
                f"TRACESCORE_SCORER_TIMEOUT ({scorer_timeout:g} s) is not "
                f"below the task timeout ({task_timeout} s): a slow scorer kills its worker "
                "instead of failing its score with a message.",
                hint="Lower TRACESCORE_SCORER_TIMEOUT or raise TRACESCORE_TASK_TIMEOUT.",
                id="scoring.W001",
            )
        )
    if lease <= task_timeout:
        found.append(
            Warning(
                f"TRACESCORE_SCORE_LEASE ({lease:g} s) is not above "
                f"the task timeout ({task_timeout} s): a score still being worked on may be "
                "handed to a second worker, and a judge called twice for it.",
                hint="Leave TRACESCORE_SCORE_LEASE unset (task timeout + 30 s) or raise it.",
                id="scoring.W002",
            )
        )
    return found
