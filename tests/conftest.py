"""Shared fixtures: three real, federating Synapse homeservers per test session.

    hs_a  school A, the bot's server
    hs_b  school B (a registered partner school)
    hs_c  C, a server no school is registered for

Servers are session-scoped (one set per process: each pytest-xdist worker starts its own), so
tests must use unique localparts (see ``unique_localpart`` or the ``new_user`` fixture). No test
relies on another having run: each test, or its module's fixture, makes the classes, people and
assignments it needs, so any order, any subset and any number of workers give the same result.
Tests under tests/e2e/ are marked ``e2e`` automatically (deselect them with ``-m "not e2e"``);
they run by default.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) without an install
    sys.path.insert(0, str(REPO_ROOT))

from devtools.homeserver import Homeserver, HomeserverError, start_homeservers, stop_homeservers  # noqa: E402
from tests import figures, reliability_doc, security_doc  # noqa: E402,F401  (the documents' renderers)
from tests.matrix_user import MatrixUser, unique_localpart  # noqa: E402

E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reverse", action="store_true",
        help="run the tests in reverse order (a check that none relies on another having run first)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs against real Synapse homeservers (and the bot as a subprocess)")


# The modules that take longest, longest first (seconds each took in the last CI run, on a worker
# beside another). pytest-xdist hands modules out in collection order (`--no-loadscope-reorder`):
# these first, then the other end-to-end modules, then the unit modules, so that the long ones
# start early and the short ones fill in at the end, and the workers finish together. The order
# is for speed only: no test relies on it (`--reverse` turns it round).
LONGEST_FIRST = (
    "e2e/test_rate_limits.py",  # ~205 s, most of it waiting on Synapse's default rc_message
    "e2e/test_faults.py",  # ~105 s
    "e2e/test_reliability.py",  # ~100 s
    "e2e/test_clock.py",  # ~75 s
    "unit/test_authorisation_matrix.py",  # ~75 s
    "e2e/test_encryption.py",  # ~65 s
    "e2e/test_trust.py",  # ~65 s
    "e2e/test_rebuild.py",  # ~50 s
    "e2e/test_element.py",  # ~40 s
)


def run_order(item: pytest.Item) -> tuple[int, int]:
    path = Path(str(item.path)).resolve()
    relative = path.relative_to(REPO_ROOT / "tests").as_posix() if REPO_ROOT / "tests" in path.parents else ""
    if relative in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(relative))
    return (1, 0) if E2E_DIR in path.parents else (2, 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
    items.sort(key=run_order)  # stable: a module's tests keep their order
    if config.getoption("--reverse"):
        items.reverse()


def pytest_sessionstart(session: pytest.Session) -> None:
    figures.commit()  # the commit the run starts on, before anything is edited or written


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    figures.note(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """docs/security.md and docs/reliability.md get the figures of the modules that passed
    (when AKO_SECURITY_DOC / AKO_RELIABILITY_DOC name them; see tests/figures.py)."""
    for written in figures.flush():
        print(f"\n[figures] wrote {written}")


@pytest.fixture(scope="session")
def homeservers(tmp_path_factory: pytest.TempPathFactory):
    # Each process (each pytest-xdist worker) starts its own three servers, in its own folder
    # (tmp_path_factory is per worker) on ports the system hands out. Another process may take a
    # port between its choice and Synapse's bind: then start again on new ports.
    for attempt in range(3):
        base = tmp_path_factory.mktemp("homeservers")
        try:
            servers = start_homeservers(base, 3, log=lambda msg: print(f"[homeservers] {msg}"))
            break
        except HomeserverError:
            if attempt == 2:
                raise
    try:
        yield servers
    finally:
        stop_homeservers(servers)


@pytest.fixture(scope="session")
def hs_a(homeservers: list[Homeserver]) -> Homeserver:
    return homeservers[0]


@pytest.fixture(scope="session")
def hs_b(homeservers: list[Homeserver]) -> Homeserver:
    return homeservers[1]


@pytest.fixture(scope="session")
def hs_c(homeservers: list[Homeserver]) -> Homeserver:
    return homeservers[2]


@pytest.fixture
async def opened():
    """``await opened(client)`` -> the client (a MatrixUser or an ElementUser), closed at the end of
    the test whether it passed or not (each one, even if closing another fails)."""
    async with AsyncExitStack() as stack:
        yield stack.enter_async_context


@pytest.fixture
def new_user(opened):
    """``await new_user(hs, "alice")`` -> a MatrixUser with a session-unique localpart
    (``alice<N>``), closed at the end of the test."""

    async def make(hs: Homeserver, prefix: str = "user") -> MatrixUser:
        return await opened(await MatrixUser.create(hs, unique_localpart(prefix)))

    return make
