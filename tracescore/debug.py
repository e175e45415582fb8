"""What DEBUG error pages may show: settings and request data with every secret masked."""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@host… — the password part, wherever such a URL appears.
URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/:@\s]*:)(?P<password>[^@/\s]+)@", re.I
)


def mask_url_passwords(text: str, substitute: str) -> str:
    """``redis://:hunter2@redis:6379/0`` → ``redis://:********@redis:6379/0``."""
    return URL_PASSWORD.sub(lambda m: f"{m['head']}{substitute}@", text)


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: passwords inside URLs are masked, at any depth.

    Settings and request.META entries whose *name* looks secret are hidden
    whole (Django's list, plus DSN and CREDENTIALS). Every other string, also
    inside dicts and lists such as ``Q_CLUSTER["redis"]`` or
    ``CACHES["default"]["LOCATION"]``, keeps its value with the password of any
    URL in it masked, so ``REDIS_URL`` still shows which host is meant.
    """

    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DSN|CREDENTIAL", flags=re.I
    )

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return mask_url_passwords(str(cleansed), self.cleansed_substitute)
        return cleansed
