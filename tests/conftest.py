"""Shared fixtures: three real, federating Synapse homeservers per test session.

    hs_a  school A, the bot's server
    hs_b  school B (a registered partner school)
    hs_c  C, a server no school is registered for

Servers are session-scoped, so tests must use unique localparts (see ``unique_localpart``
or the ``new_user`` fixture). Tests under tests/e2e/ are marked ``e2e`` automatically
(deselect them with ``-m "not e2e"``); they run by default.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) without an install
    sys.path.insert(0, str(REPO_ROOT))

from bot.homeserver import Homeserver, start_homeservers, stop_homeservers  # noqa: E402
from tests.matrix_user import MatrixUser, unique_localpart  # noqa: E402

E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs against real Synapse homeservers (and the bot as a subprocess)")
    config.addinivalue_line("markers", "disruptive: stops a homeserver; runs after every other test")
    config.addinivalue_line("markers", "overture: starts background work; runs first")
    config.addinivalue_line("markers", "finale: checks background work; runs last before the disruptive tests")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            # with pytest-xdist (-n 2 --dist loadgroup) every end-to-end test runs on one worker, in
            # this order, sharing one set of homeservers; unit tests run beside them on the other
            item.add_marker(pytest.mark.xdist_group("e2e"))
    # Background work (a rate-limited rush) starts first and is checked last; tests that stop a
    # homeserver run after everything, so federation back-off cannot slow the others.
    def place(item: pytest.Item) -> int:
        for rank, marker in enumerate(("overture", None, "finale", "disruptive")):
            if marker and item.get_closest_marker(marker) is not None:
                return rank
        return 1

    items.sort(key=place)


@pytest.fixture(scope="session")
def homeservers(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("homeservers")
    servers = start_homeservers(base, 3, log=lambda msg: print(f"[homeservers] {msg}"))
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
async def new_user():
    """``await new_user(hs, "alice")`` -> a MatrixUser with a session-unique localpart
    (``alice<N>``), closed at the end of the test."""
    users: list[MatrixUser] = []

    async def make(hs: Homeserver, prefix: str = "user") -> MatrixUser:
        user = await MatrixUser.create(hs, unique_localpart(prefix))
        users.append(user)
        return user

    yield make
    for user in users:
        await user.close()
