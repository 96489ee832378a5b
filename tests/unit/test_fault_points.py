"""Fault points are no-ops in Ako; devtools/faulty_bot.py's hooks act at the one point named, the n-th time."""

from __future__ import annotations

import pytest

from bot import fault_points
from commands.context import Role
from commands.registry import Registry
from devtools import faulty_bot


@pytest.fixture
def recorded():
    seen: list[str] = []
    fault_points.install(seen.append)
    yield seen
    fault_points.install(None)


def test_without_a_hook_a_fault_point_does_nothing():
    fault_points.install(None)
    for point in fault_points.POINTS:
        fault_points.crash_point(point)  # the test process is still here


def test_an_installed_hook_hears_every_point(recorded):
    fault_points.crash_point("received")
    fault_points.crash_point("sent")
    assert recorded == ["received", "sent"]


def test_a_crash_hook_kills_only_at_its_point_and_its_turn(monkeypatch):
    kills = []
    monkeypatch.setattr(faulty_bot.os, "kill", lambda pid, sig: kills.append(sig))
    hook = faulty_bot.crash_at("sent", 2)
    hook("received")
    hook("sent")
    assert kills == []
    hook("sent")
    assert len(kills) == 1


def test_an_unknown_crash_point_is_refused():
    with pytest.raises(ValueError, match="no fault point 'sendt'"):
        faulty_bot.crash_at("sendt")


async def test_a_replaced_handler_answers_under_every_name():
    registry = Registry()

    @registry.command("schools", who=Role.ANYONE, summary="x", aliases=("school list",))
    async def schools(ctx) -> None:
        return None

    async def failing(ctx, **kwargs):
        raise RuntimeError("injected")

    registry.replace_handler("schools", failing)
    assert registry.find("schools").handler is failing
    assert registry.find("school list").handler is failing
    assert registry.commands["schools"].summary == "x"
