from datetime import timezone

import pytest

import commands
from commands.context import Role, Where
from commands.converters import ParseEnv, Text, UserId, When
from commands.errors import BadArgument, UnknownCommand
from commands.registry import Param, Registry, parse_args
from commands.tokens import tokenize

from .conftest import NOW
from zoneinfo import ZoneInfo

ENV = ParseEnv(NOW, ZoneInfo("Pacific/Auckland"))
REGISTRY = commands.load()


@pytest.mark.parametrize("cmd", REGISTRY.all(), ids=lambda c: c.name)
def test_every_command_has_help_usage_and_permission(cmd):
    assert cmd.summary.strip() and cmd.summary.strip().endswith(".")
    assert cmd.usage("!").startswith("!" + cmd.name)
    assert isinstance(cmd.who, Role) and isinstance(cmd.where, Where)
    assert cmd.permission_text()


def test_resolve_longest_name_first():
    cmd, used = REGISTRY.resolve(tokenize("class teacher add @x:y"), "!")
    assert cmd.name == "class teacher add" and used == 3
    cmd, used = REGISTRY.resolve(tokenize("classes"), "!")
    assert cmd.name == "classes" and used == 1


def test_unknown_command_suggests():
    with pytest.raises(UnknownCommand, match=r"Did you mean !roster\?"):
        REGISTRY.resolve(tokenize("rooster"), "!")
    with pytest.raises(UnknownCommand, match="needs one of"):
        REGISTRY.resolve(tokenize("class"), "!")


def _parse(cmd_params, text, body=""):
    reg = Registry()

    async def h(ctx, **kw):
        pass

    reg.command("x", *cmd_params, who=Role.ANYONE, summary="Test.")(h)
    cmd = reg.find("x")
    toks = tokenize(text)
    return parse_args(cmd, text, toks, body, ENV)


def test_keywords_any_order_and_greedy_dates():
    params = [
        Param("title", Text()),
        Param("due", When(), keyword="due"),
        Param("points", Text(), keyword="points", optional=True),
    ]
    args = _parse(params, '"Lab report" points 20 due friday 5pm')
    assert args["title"] == "Lab report" and args["points"] == "20"
    assert args["due"].astimezone(timezone.utc).hour == 4  # 17:00 NZDT is 04:00 UTC
    with pytest.raises(BadArgument, match="needs due"):
        _parse(params, '"Lab report"')


def test_greedy_date_then_rest_of_line():
    args = _parse([Param("at", When()), Param("text", Text(), rest=True)], "friday 5pm bring your lab books")
    assert args["text"] == "bring your lab books"


def test_many_users_and_extra_words():
    args = _parse([Param("users", UserId(), many=True)], "@a:x.test @b:y.test")
    assert args["users"] == ["@a:x.test", "@b:y.test"]
    with pytest.raises(BadArgument, match="not a Matrix user"):
        _parse([Param("users", UserId(), many=True)], "@a:x.test bob")
    with pytest.raises(BadArgument, match="didn't expect"):
        _parse([Param("user", UserId())], "@a:x.test extra")


@pytest.mark.parametrize("uid", ["@аna:b.test", "@ana:b.test\u202e", "@ana", "ana:b.test", "@ANA:b.test"])
def test_lookalike_and_malformed_user_ids_refused(uid):
    with pytest.raises(BadArgument):
        UserId().convert(uid, ENV)


def test_past_dates_refused():
    with pytest.raises(BadArgument, match="in the past"):
        When().convert("2020-01-01 10:00", ENV)
