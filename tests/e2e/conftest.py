"""The bot as a real process on school A's server, and a registered two-school cluster."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from tests.botproc import BotProcess, write_bot_config
from tests.matrix_user import MatrixUser

from .helpers import open_dm


@dataclass
class Cluster:
    bot_id: str
    bot: BotProcess
    operator: MatrixUser
    operator_dm: str
    admin_a: MatrixUser
    admin_b: MatrixUser
    teacher_a: MatrixUser
    teacher_b: MatrixUser


@pytest.fixture(scope="session")
async def bot(hs_a, tmp_path_factory):
    """Ako running as a subprocess, logged in to school A's server."""
    base = tmp_path_factory.mktemp("ako")
    bot_id, _ = hs_a.register("ako", "ako-test-password")
    operator_id = hs_a.user_id("it")
    cfg = write_bot_config(base / "config.toml", hs_a, bot_id, "ako-test-password", [operator_id], base / "data")
    proc = BotProcess(cfg, base / "data").start()
    yield bot_id, proc, operator_id
    proc.stop()


@pytest.fixture(scope="session")
async def cluster(bot, hs_a, hs_b):
    """Schools A and B registered by the operator, each with an admin and a teacher (staff)."""
    bot_id, proc, operator_id = bot
    operator = await MatrixUser.create(hs_a, "it")
    assert operator.user_id == operator_id
    users = await asyncio.gather(
        MatrixUser.create(hs_a, "admina"),
        MatrixUser.create(hs_b, "adminb"),
        MatrixUser.create(hs_a, "teachera"),
        MatrixUser.create(hs_b, "teacherb"),
    )
    admin_a, admin_b, teacher_a, teacher_b = users
    dm = await open_dm(operator, bot_id)
    for line in (
        f'!school add {hs_a.server_name} "Kura A"',
        f'!school add {hs_b.server_name} "Kura B"',
        f"!school admin {hs_a.server_name} {admin_a.user_id}",
        f"!school admin {hs_b.server_name} {admin_b.user_id}",
    ):
        reply = await operator.command(dm, line)
        assert "Registered" in reply["body"] or "school admin" in reply["body"], reply["body"]
    for admin, teacher in ((admin_a, teacher_a), (admin_b, teacher_b)):
        admin_dm = await open_dm(admin, bot_id)
        reply = await admin.command(admin_dm, f"!staff add {teacher.user_id}")
        assert "is now staff" in reply["body"], reply["body"]
    yield Cluster(bot_id, proc, operator, dm, admin_a, admin_b, teacher_a, teacher_b)
    for u in (operator, *users):
        await u.close()
