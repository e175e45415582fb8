"""The scorer registry, built from the ``TRACESCORE_SCORERS`` setting.

Each entry is a dotted path to a Scorer subclass, a Scorer instance, or a
module. A module contributes the scorers it decorates with ``@register_scorer``
and, if it defines ``get_scorers()``, the ones that function returns (judges
defined in settings, for instance). Duplicate ids fail at start-up.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import threading
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from scoring.scorers.base import Scorer

_declared: dict[str, list[Scorer]] = defaultdict(list)
_registry: dict[str, Scorer] | None = None
_lock = threading.Lock()


class UnknownScorer(LookupError):
    """No scorer is registered under this id."""


def register_scorer(obj):
    """Class or instance decorator: declare a scorer in its module.

    The scorer is registered when its module is listed in TRACESCORE_SCORERS.
    """
    instance = obj() if inspect.isclass(obj) else obj
    declaring_module = sys._getframe(1).f_globals["__name__"]
    _declared[declaring_module].append(instance)
    return obj


def _is_module(path: str) -> bool:
    try:
        return importlib.util.find_spec(path) is not None
    except (ImportError, ValueError):
        return False


def _scorers_from_path(path: str) -> list[Scorer]:
    if _is_module(path):
        module = importlib.import_module(path)
        found = list(_declared.get(module.__name__, []))
        if hasattr(module, "get_scorers"):
            found.extend(module.get_scorers())
        return found
    try:
        obj = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"TRACESCORE_SCORERS: cannot import {path!r}: {exc}") from exc
    if inspect.isclass(obj) and issubclass(obj, Scorer):
        return [obj()]
    if isinstance(obj, Scorer):
        return [obj]
    raise ImproperlyConfigured(
        f"TRACESCORE_SCORERS: {path!r} is neither a module, a Scorer subclass nor a Scorer."
    )


def build(paths: list[str]) -> dict[str, Scorer]:
    """The registry for these dotted paths; raises ImproperlyConfigured on duplicates."""
    registry: dict[str, Scorer] = {}
    origin: dict[str, str] = {}
    for path in paths:
        for scorer in _scorers_from_path(path):
            if not scorer.id:
                raise ImproperlyConfigured(f"TRACESCORE_SCORERS: {scorer!r} from {path} has no id.")
            if scorer.id in registry:
                raise ImproperlyConfigured(
                    f"Duplicate scorer id {scorer.id!r}: registered by {origin[scorer.id]} "
                    f"and by {path}. Give one of them another id."
                )
            registry[scorer.id] = scorer
            origin[scorer.id] = path
    return registry


def load() -> dict[str, Scorer]:
    """(Re)build the registry from settings."""
    global _registry
    with _lock:
        _registry = build(list(settings.TRACESCORE_SCORERS))
        return _registry


def _current() -> dict[str, Scorer]:
    return _registry if _registry is not None else load()


def get(scorer_id: str) -> Scorer:
    try:
        return _current()[scorer_id]
    except KeyError:
        raise UnknownScorer(f"No scorer with id {scorer_id!r}.") from None


def all() -> list[Scorer]:  # noqa: A001 - the registry's public name
    return list(_current().values())


def _reload_on_change(*, setting, **kwargs):
    if setting in {"TRACESCORE_SCORERS", "TRACESCORE_CUSTOM_JUDGES"}:
        global _registry
        _registry = None


setting_changed.connect(_reload_on_change)
