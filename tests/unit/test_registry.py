from datetime import datetime, timezone
from typing import Annotated

import pytest

import commands
from commands.context import Role, Where
from commands.converters import ClassCode, Markdown, Number, ParseEnv, Text, UserId, When
from commands.errors import BadArgument, UnknownCommand
from commands.registry import Body, Keyword, Registry, Rest, parse_args
from commands.tokens import tokenize

from .conftest import NOW
from zoneinfo import ZoneInfo

ENV = ParseEnv(NOW, ZoneInfo("Pacific/Auckland"))
REGISTRY = commands.load()


@pytest.mark.parametrize("cmd", REGISTRY.all(), ids=lambda c: c.name)
def test_every_command_has_help_usage_and_permission(cmd):
    assert cmd.summary.strip() and cmd.summary.strip().endswith(".")
    name = cmd.group if cmd.word_after_first else cmd.name
    assert (cmd.usage("!") + " ").startswith(f"!{name} ")
    assert isinstance(cmd.who, Role) and isinstance(cmd.where, Where)
    assert cmd.permission_text()
    for check in cmd.checks:
        assert check.refusal.strip().endswith(".") and check.help.strip().endswith(".")


def words(tokens) -> list[str]:
    return [t.text for t in tokens]


def test_resolve_longest_name_first():
    cmd, args = REGISTRY.resolve(tokenize("class teacher add @x:y"), "!")
    assert cmd.name == "class teacher add" and words(args) == ["@x:y"]
    cmd, args = REGISTRY.resolve(tokenize("classes"), "!")
    assert cmd.name == "classes" and args == []


# --- a word of the name after the first argument (SPEC §3: `!assign edit A1 due|cutoff|points|title <value>`)


def edit_registry() -> Registry:
    """A group "thing edit" of two subcommands written `thing edit T1 colour red`, and a plain command."""
    reg = Registry()

    async def colour(ctx, thing: Annotated[str, Text("thing")], colour: Annotated[str, Text("colour")]):
        pass

    async def name(ctx, thing: Annotated[str, Text("thing")], name: Annotated[str, Text("name", greedy=True)]):
        pass

    async def show(ctx, thing: Annotated[str, Text("thing")]):
        pass

    reg.command("thing edit colour", who=Role.ANYONE, summary="Colour.", word_after_first=True)(colour)
    reg.command("thing edit name", who=Role.ANYONE, summary="Name.", word_after_first=True)(name)
    reg.command("thing show", who=Role.ANYONE, summary="Show.")(show)
    return reg


def test_the_word_after_the_first_argument_names_the_subcommand():
    reg = edit_registry()
    cmd, args = reg.resolve(tokenize("thing edit T1 colour dark red"), "!")
    assert cmd.name == "thing edit colour" and words(args) == ["T1", "dark", "red"]
    cmd, args = reg.resolve(tokenize("THING Edit T1 NAME big box"), "!")
    assert cmd.name == "thing edit name" and words(args) == ["T1", "big", "box"]
    # discord.py's order too
    cmd, args = reg.resolve(tokenize("thing edit colour T1 red"), "!")
    assert cmd.name == "thing edit colour" and words(args) == ["T1", "red"]
    # a quoted word is a value, never a name
    with pytest.raises(UnknownCommand, match="needs one of"):
        reg.resolve(tokenize('thing edit T1 "colour" red'), "!")
    # where a class code may come first (a room of no class): after the code and the first argument
    cmd, args = reg.resolve(tokenize("thing edit PHYS12 T1 colour red"), "!", code_may_lead=True)
    assert cmd.name == "thing edit colour" and words(args) == ["PHYS12", "T1", "red"]
    with pytest.raises(UnknownCommand):
        reg.resolve(tokenize("thing edit PHYS12 T1 colour red"), "!")
    # other commands are untouched
    cmd, args = reg.resolve(tokenize("thing show T1"), "!")
    assert cmd.name == "thing show" and words(args) == ["T1"]


def test_usage_writes_the_word_after_the_first_argument():
    reg = edit_registry()
    assert reg.find("thing edit colour").usage("!") == '!thing edit "<thing>" colour "<colour>"'
    assert reg.find("thing edit name").usage("!", code="CODE") == '!thing edit CODE "<thing>" name "<name>"'
    assert REGISTRY.find("assign edit due").usage("!") == "!assign edit <assignment> due <when>"
    assert REGISTRY.find("assign edit cutoff").usage("!") == "!assign edit <assignment> cutoff <when>|off"


def test_a_missing_or_unknown_word_names_the_subcommands_and_their_usage():
    reg = edit_registry()
    usage = 'Usage: `!thing edit "<thing>" colour "<colour>"` · `!thing edit "<thing>" name "<name>"`'
    for typed, given in (("thing edit", ""), ("thing edit T1", " (nothing came after “T1”)"), ("thing edit T1 size 3", " (not “size”)")):
        with pytest.raises(UnknownCommand) as e:
            reg.resolve(tokenize(typed), "!")
        assert e.value.message == f"!thing edit needs one of: colour, name, after the thing{given}.\n{usage}"
    with pytest.raises(UnknownCommand, match=r"^!assign edit needs one of: due, cutoff, points, title, after the assignment"):
        REGISTRY.resolve(tokenize("assign edit A1 colour blue"), "!")


async def test_one_change_per_command():
    reg = edit_registry()
    reg.command("thing edit size", who=Role.ANYONE, summary="Size.", word_after_first=True)(_sized)

    async def bind(line):
        cmd, args = reg.resolve(tokenize(line), "!")
        return await reg.arguments(cmd, line, args, "", ENV, "!")

    assert await bind("thing edit T1 size 3") == {"thing": "T1", "size": 3}
    with pytest.raises(BadArgument) as e:
        await bind("thing edit T1 size 3 colour red")
    assert e.value.message == "One change per command: send `!thing edit T1 size 3`, then `!thing edit T1 colour red`."
    with pytest.raises(BadArgument) as e:
        await bind("thing edit T1 size colour red")
    assert e.value.message == "One change per command: send `!thing edit T1 size <size>`, then `!thing edit T1 colour red`."
    # a value that reads is the value, whatever words it holds
    assert (await bind("thing edit T1 name colour of the box"))["name"] == "colour of the box"


async def _sized(ctx, thing: Annotated[str, Text("thing")], size: Annotated[int, Number("size", integer=True)]):
    pass


def test_a_word_after_the_first_argument_is_declared_soundly():
    async def greedy_first(ctx, when: Annotated[datetime, When()], text: Annotated[str, Text()]):
        pass

    with pytest.raises(ValueError, match="must be one required word"):
        Registry().command("x edit y", who=Role.ANYONE, summary="X.", word_after_first=True)(greedy_first)
    with pytest.raises(ValueError, match="two or more words"):
        Registry().command("x", who=Role.ANYONE, summary="X.", word_after_first=True)(_sized)
    reg = edit_registry()
    with pytest.raises(ValueError, match="both a command and a group"):
        reg.command("thing edit", who=Role.ANYONE, summary="X.")(_sized)


def test_unknown_command_suggests():
    with pytest.raises(UnknownCommand, match=r"Did you mean !roster\?"):
        REGISTRY.resolve(tokenize("rooster"), "!")
    with pytest.raises(UnknownCommand, match="needs one of"):
        REGISTRY.resolve(tokenize("class"), "!")


async def _parse(handler, text, body=""):
    reg = Registry()
    reg.command("x", who=Role.ANYONE, summary="Test.")(handler)
    cmd = reg.find("x")
    toks = tokenize(text)
    return await parse_args(cmd, text, toks, body, ENV)


async def test_keywords_any_order_and_greedy_dates():
    async def h(
        ctx,
        title: Annotated[str, Text()],
        due: Annotated[datetime, When(), Keyword("due")],
        points: Annotated[str | None, Text(), Keyword("points")] = None,
    ):
        pass

    args = await _parse(h, '"Lab report" points 20 due friday 5pm')
    assert args["title"] == "Lab report" and args["points"] == "20"
    assert args["due"].astimezone(timezone.utc).hour == 4  # 17:00 NZDT is 04:00 UTC
    with pytest.raises(BadArgument, match="needs due"):
        await _parse(h, '"Lab report"')


async def test_greedy_date_then_rest_of_line():
    async def h(ctx, at: Annotated[datetime, When()], text: Annotated[str, Text(), Rest]):
        pass

    args = await _parse(h, "friday 5pm bring your lab books")
    assert args["text"] == "bring your lab books"


async def test_many_users_and_extra_words():
    async def many(ctx, users: Annotated[list[str], UserId()]):
        pass

    async def one(ctx, user: Annotated[str, UserId()]):
        pass

    args = await _parse(many, "@a:x.test @b:y.test")
    assert args["users"] == ["@a:x.test", "@b:y.test"]
    with pytest.raises(BadArgument, match="not a Matrix user"):
        await _parse(many, "@a:x.test bob")
    with pytest.raises(BadArgument, match="didn't expect"):
        await _parse(one, "@a:x.test extra")


def test_the_signature_is_the_declaration():
    """Optional from a default, several values from a list, keyword/rest/body from the metadata."""

    async def h(
        ctx,
        code: Annotated[str, ClassCode()],
        users: Annotated[list[str], UserId()],
        due: Annotated[datetime | None, When(), Keyword("due")] = None,
        text: Annotated[str | None, Markdown(), Body] = None,
    ):
        pass

    reg = Registry()
    reg.command("x", who=Role.ANYONE, summary="Test.")(h)
    p = {p.name: p for p in reg.find("x").params}
    assert list(p) == ["code", "users", "due", "text"]
    assert not p["code"].optional and p["users"].many and not p["code"].many
    assert p["due"].optional and p["due"].keyword == "due" and p["text"].body
    assert reg.find("x").usage("!") == "!x <class code> <@user:server>… [due <when>] [<text on the following lines>]"


def test_a_parameter_without_a_converter_is_refused():
    async def h(ctx, title: str):
        pass

    with pytest.raises(ValueError, match="title needs Annotated"):
        Registry().command("x", who=Role.ANYONE, summary="Test.")(h)


@pytest.mark.parametrize("uid", ["@аna:b.test", "@ana:b.test\u202e", "@ana", "ana:b.test", "@ANA:b.test"])
def test_lookalike_and_malformed_user_ids_refused(uid):
    with pytest.raises(BadArgument):
        UserId().parse(uid, ENV)


def test_past_dates_refused():
    with pytest.raises(BadArgument, match="in the past"):
        When().parse("2020-01-01 10:00", ENV)


# Where each declared place lets a command run, written by hand (SPEC §3; README "where").
WHERE_TABLE = {
    #                                  class  own work  other's work  staff  DM     no record
    Where.ANYWHERE:                    (True, True,     True,         True,  True,  True),
    Where.CLASS:                       (True, True,     True,         True,  True,  True),  # elsewhere by code
    Where.CLASS_ROOM:                  (True, False,    False,        False, False, False),
    Where.WORK_ROOM:                   (False, True,    True,         False, False, False),
    Where.OWN_WORK_ROOM_OR_CLASS_ROOM: (True, True,     False,        False, False, False),
    Where.DM:                          (False, False,   False,        False, True,  False),
}


@pytest.mark.parametrize("where", list(Where), ids=lambda w: w.value)
def test_where_allows_follows_the_table(where):
    from types import SimpleNamespace

    from commands.checks import where_allows
    from storage.models import Room

    me = "@ana:b.test"
    rooms = (
        Room("!c", "class", 1, None), Room("!w", "work", 1, me), Room("!w2", "work", 1, "@ben:b.test"),
        Room("!s", "staff", 1, None), Room("!d", "dm", None, me), None,
    )
    caller = SimpleNamespace(user_id=me)
    seen = tuple(where_allows(where, SimpleNamespace(room=room, caller=caller)) for room in rooms)
    assert seen == WHERE_TABLE[where]
