"""Figures measured by the tests, published in docs/ only from runs in which they passed.

A module that measures something calls ``record(ENV, section, figures, __file__)``; nothing is
written then. At the end of the run (``flush``, from tests/conftest.py's ``pytest_sessionfinish``)
each recorded section is merged into the document its environment variable names
(``AKO_SECURITY_DOC``, ``AKO_RELIABILITY_DOC``), but only if every test of the measuring module
that ran in this process passed (setup, call and teardown) and at least one did. Each section
carries when it was measured and on which commit, so a document can hold sections of different
runs and say so. The figures of every section are kept in the document itself (a JSON comment at
its end); a run rewrites only the sections it measured. Writers in parallel (pytest-xdist workers)
take a lock on the document.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
_DATA = re.compile(r"<!-- figures (\{.*\}) -->", re.S)

_pending: list[tuple[str, str, dict, str]] = []  # (environment variable, section, figures, module)
_passed: set[str] = set()
_failed: set[str] = set()
_renderers: dict[str, Callable[[dict], str]] = {}
_commit: str | None = None


def register(env: str, render: Callable[[dict], str]) -> None:
    """The document named by ``env`` is written with ``render(sections)``."""
    _renderers[env] = render


def _module(path: str | os.PathLike) -> str:
    p = Path(path).resolve()
    try:
        return p.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return p.as_posix()


def record(env: str, section: str, figures: dict, module_file: str | os.PathLike) -> None:
    """Keep one section's figures, measured by the tests in ``module_file``, for the end of the run."""
    if os.environ.get(env):
        _pending.append((env, section, figures, _module(module_file)))


def note(report) -> None:
    """pytest_runtest_logreport: remember which modules had a failure, and which a passed test."""
    module = report.nodeid.split("::", 1)[0]
    if report.failed:
        _failed.add(module)
    elif report.when == "call" and report.passed:
        _passed.add(module)


def passed(module: str) -> bool:
    return module in _passed and module not in _failed


def commit() -> str:
    """The commit the tests ran on: its short hash, and a note if the checkout had changes (the
    generated documents themselves aside)."""
    global _commit
    if _commit is None:
        try:
            head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
            changes = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/*.md"],
                cwd=REPO_ROOT, capture_output=True, text=True, check=True,
            ).stdout.strip()
            _commit = head + (" with uncommitted changes" if changes else "")
        except (OSError, subprocess.CalledProcessError):
            _commit = "unknown (not a git checkout)"
    return _commit


def flush() -> list[str]:
    """Write every recorded section whose module passed; returns the sections written."""
    written = []
    by_doc: dict[str, dict[str, dict]] = {}
    for env, section, figures, module in _pending:
        if passed(module):
            by_doc.setdefault(env, {})[section] = {
                **figures,
                "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "commit": commit(),
                "by": module,
            }
    _pending.clear()
    for env, sections in by_doc.items():
        path = Path(os.environ[env])
        if not path.is_absolute():
            path = REPO_ROOT / path
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = Path(tempfile.gettempdir()) / f"ako-figures-{hashlib.sha1(str(path).encode()).hexdigest()[:12]}.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = {}
            if path.exists():
                m = _DATA.search(path.read_text(encoding="utf-8"))
                if m:
                    data = json.loads(m.group(1))
            data.update(sections)
            path.write_text(_renderers[env](data) + f"\n<!-- figures {json.dumps(data, sort_keys=True)} -->\n", encoding="utf-8")
        written += [f"{path.name}: {s}" for s in sections]
    return written


def stamp(section: dict) -> str:
    """'Measured <when> on commit <hash>, by <module>' for a section's heading line."""
    return f"Measured {section['measured']} on commit `{section.get('commit', 'unknown')}` by `{section.get('by', '?')}`"
