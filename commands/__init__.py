"""The classroom: one module per feature, each declaring its commands in the shared registry."""

from __future__ import annotations

from .registry import Registry, registry


def load() -> Registry:
    """Import every feature module so its commands are declared, and return the registry."""
    from . import assignments, classes, confirm, exports, grading, help, schools, submissions  # noqa: F401
    from . import blocking, privacy  # noqa: F401
    from . import digest, forum, reminders, zones  # noqa: F401
    from . import library, programme_use, programmes, staffroom  # noqa: F401
    from . import marking, overview  # noqa: F401

    return registry
