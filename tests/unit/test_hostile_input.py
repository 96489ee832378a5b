"""Hostile input (SPEC §4 "Safe output"; issue 6): property tests over everything that reads text
from a room — the tokenizer, the converters, the registry's parse path through the dispatcher,
``bot.runtime.command_text`` and the bot's event handling, and the markdown → HTML path.

What is thrown at them: 64 KiB bodies, NUL and other control characters, zero-width and
right-to-left characters, Cyrillic lookalikes, markdown nested 500 deep, the patterns that make
markdown parsers quadratic, forged reply fallbacks, XSS payloads. What must hold: no crash (a
command ends DONE or as a UserError, never BUG), no HTML outside Matrix's allowed tags and
attributes, no ``javascript:``/``data:`` link, every event under the size limit, mentions only of
the people meant, ``@room`` never, and each example within its time budget (hypothesis's
``deadline``). The counts go into docs/security.md (see tests/security_doc.py).
"""

from __future__ import annotations

import ast
import itertools
import tempfile
import time
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

import commands
from bot import render
from bot.mentions import command_text
from bot.routing import Ignore, Known, RunCommand, route
from commands import converters as conv
from commands.context import Message, Role, Where
from commands.dispatch import CommandEvent, Outcome
from commands.errors import UserError
from commands.grading import GradeWords, ReturnWords
from commands.tokens import tokenize
from storage.db import Database

from .conftest import NOW
from .databases import copy_of
from .fakes import OPERATOR, FakeRooms, FrozenClock, Harness

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="ako-hypothesis-"))  # its caches stay out of the repository

FIGURES: Counter = Counter()  # examples tried per property, and what went wrong (all 0)
SLOWEST: dict[str, float] = {}

# No deadline: tests do not time things (a loaded machine made a 2-second deadline fail at random).
# The slowest example of each property is kept in SLOWEST and shown in docs/security.md instead.
SETTINGS = dict(
    deadline=None,
    database=None,  # no .hypothesis folder in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

# --- what hostile text is made of

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
LOOKALIKES = "аеорсхуіјԁһӏ＠：．"  # Cyrillic letters, fullwidth @ : .
MARKUP = "*_[]()<>!`#>-|~=&;:/\\\"'“”„«»‘’@${}\n\t "
CONTROL = "\x00\x01\x07\x08\x0b\x0c\x0d\x1b\x7f\x85\u2028\u2029"
SPECIAL = ZERO_WIDTH + BIDI + LOOKALIKES + MARKUP + CONTROL

XSS = [
    "<A HREF=0:>x</A>",  # a relative link ("0:" is no scheme) leads nowhere in a message: found by hypothesis
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<img src="javascript:alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](data:text/html,<script>alert(1)</script>)",
    "![x](data:image/png;base64,AAAA)",
    "![x](https://tracker.example/pixel.png)",
    "[x]: javascript:alert(1)\n\n[x]",
    "<svg onload=alert(1)>",
    "<iframe src=//evil.example></iframe>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<span data-mx-color="red" onclick="alert(1)">x</span>',
    "<object data=x></object><embed src=x>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    "<!-- <script>alert(1)</script> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<base href=javascript:/>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<a href=\"https://matrix.to/#/@room\">@room</a> @room",
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    '<code class="language-x" onmouseover="alert(1)">x</code>',
    "<<script>script>alert(1)<</script>/script>",
]

# Inputs that make markdown parsers slow (quadratic or worse) or deeply recursive.
PATHOLOGICAL = ["[", "![", "[a][", "[a](", '<a href="', "<http:", "- \n", "1. ", "> ", "`", "*_", "_*",
                "\\", "&", "<", "|", "```\n", "**a", "<!--", "&#", "](", "~~", "\n", "a\n", "- - ", "* "]

NESTERS = [
    lambda n: "> " * n + "x",
    lambda n: "- " * n + "x",
    lambda n: "1. " * n + "x",
    lambda n: "\n".join("  " * i + "- x" for i in range(n)),
    lambda n: "\n".join(">" * i + " x" for i in range(1, n)),
    lambda n: "".join("   " * i + "1. x\n" for i in range(n)),
    lambda n: "<div>" * n + "x" + "</div>" * n,
    lambda n: "*" * n + "a" + "*" * n,
    lambda n: "[" * n + "a" + "](x)" * n,
    lambda n: "> - " * n + "x",
]

MAX_BODY = 65_536

hostile_char = st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8"))
hostile_text = st.text(hostile_char, max_size=200)
big_text = st.tuples(st.sampled_from(PATHOLOGICAL), st.integers(1, MAX_BODY)).map(lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]])
deep_text = st.tuples(st.sampled_from(NESTERS), st.integers(1, 500)).map(lambda t: t[0](t[1])[:MAX_BODY])
xss_text = st.lists(st.one_of(st.sampled_from(XSS), hostile_text), min_size=1, max_size=4).map("".join)
any_text = st.one_of(hostile_text, xss_text, big_text, deep_text)


def _timed(name: str, started: float) -> None:
    took = time.perf_counter() - started
    SLOWEST[name] = max(SLOWEST.get(name, 0.0), took)
    FIGURES[f"examples:{name}"] += 1


# --- checking HTML


class _HtmlCheck(HTMLParser):
    """Every tag and attribute must be on Matrix's list; links only to allowed schemes; images only mxc."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in render.ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
            return
        allowed = render.ALLOWED_ATTRIBUTES.get(tag, set())
        for name, value in attrs:
            if name not in allowed:
                self.problems.append(f"attribute {name} on <{tag}>")
            if name in ("href", "src"):
                url = "".join(ch for ch in (value or "") if ch > " ").lower()
                scheme = url.split(":", 1)[0] if ":" in url else ""
                if url.startswith(("javascript:", "data:", "vbscript:")) or (scheme and scheme not in render.URL_SCHEMES):
                    self.problems.append(f"link {value!r}")
                if tag == "img" and not url.startswith("mxc://"):
                    self.problems.append(f"image from {value!r}")

    handle_startendtag = handle_starttag

    def handle_comment(self, data):
        self.problems.append("comment")

    def handle_decl(self, decl):
        self.problems.append(f"declaration {decl!r}")

    def handle_pi(self, data):
        self.problems.append("processing instruction")

    def unknown_decl(self, data):
        self.problems.append(f"declaration {data!r}")


def html_problems(html: str) -> list[str]:
    checker = _HtmlCheck()
    checker.feed(html)
    checker.close()
    return checker.problems


def check_content(content: dict, mentions: tuple[str, ...], room_mention: bool = False) -> None:
    """An event the bot would send: safe HTML, under the size limit, mentions exactly as meant."""
    if "formatted_body" in content:
        problems = html_problems(content["formatted_body"])
        FIGURES["html problems"] += len(problems)
        FIGURES["bad links"] += sum(1 for p in problems if p.startswith(("link", "image")))
        assert not problems, problems
    assert render.event_bytes(content) <= render.MAX_EVENT_BYTES + 2_000, render.event_bytes(content)
    expected = {"user_ids": list(mentions)} if mentions else {}
    if room_mention:
        expected["room"] = True
    assert content["m.mentions"] == expected


def check_sent(messages: list[Message]) -> None:
    """What the runtime does with each queued message: split, render, and the result checked."""
    for m in messages:
        assert not m.room_mention, "@room from a command"
        pieces = render.split_markdown(m.markdown)
        assert all(render._cost(p) <= render.MAX_EVENT_BYTES // 3 for p in pieces)
        for piece in pieces:
            check_content(render.content_for(Message(**{**m.__dict__, "markdown": piece})), m.mentions)


# --- the tokenizer and the converters


@settings(max_examples=300, **SETTINGS)
@given(any_text)
@example("\x00")
@example('"unclosed')
@example("“curly” «guillemets» „low“ ‘single’")
def test_tokenizer_never_crashes_and_tokens_cover_the_text(text):
    started = time.perf_counter()
    try:
        tokens = tokenize(text)
    except UserError:
        FIGURES["refused:tokenizer"] += 1
        tokens = []
    for t in tokens:
        span = text[t.start : t.end]
        assert (span[1:-1] if t.quoted else span) == t.text
    _timed("tokenizer", started)


CONVERTERS = [
    conv.Text(), conv.Markdown(), conv.UserId(), conv.ServerName(), conv.ClassCode(), conv.AssignmentId(),
    conv.When(), conv.When(allow_past=True), conv.Duration(), conv.TimeZone(), conv.Choice("reset", "off"),
    conv.Number(), conv.Number(integer=True), GradeWords(), ReturnWords(),
]


@settings(max_examples=400, **SETTINGS)
@given(st.sampled_from(CONVERTERS), any_text)
@example(conv.When(), "in 99999999999 days")
@example(conv.When(), "9999-12-31 23:59")
@example(conv.Duration(), "99999999999w")
@example(conv.Number(), "1e999")
@example(conv.Number(integer=True), "١٢")
@example(GradeWords(), "٩/٢٠ \x00")
def test_converters_answer_with_a_value_or_a_sentence(converter, text):
    started = time.perf_counter()
    env = conv.ParseEnv(NOW, __import__("zoneinfo").ZoneInfo("Pacific/Honolulu"))
    try:
        converter.parse(text, env)
    except UserError as e:
        assert e.message and "Traceback" not in e.message
        FIGURES["refused:converters"] += 1
    _timed("converters", started)


REAL = "@teacher:a.test"


@pytest.mark.parametrize(
    "lookalike",
    [
        "@tеacher:a.test",  # Cyrillic е
        "@teаcher:a.test",  # Cyrillic а
        "@teacher:а.test",  # Cyrillic а in the server
        "@teacher\u202e:a.test",  # right-to-left override
        "@\u202eteacher:a.test",
        "@teacher:a.test\u202e",
        "@teacher\u200b:a.test",  # zero-width space
        "@tea\u200dcher:a.test",  # zero-width joiner
        "@teacher:a.test\ufeff",
        "@teacher\u2066:a.test\u2069",
        "＠teacher:a.test",  # fullwidth @
        "@teacher：a.test",  # fullwidth colon
        "@Teacher:a.test",  # upper case is not the same id
        "@teacher:a.test\x00",
        "@teacher:a.test\x00@eve:c.test",
    ],
)
def test_lookalike_user_ids_are_refused(lookalike):
    env = conv.ParseEnv(NOW, __import__("zoneinfo").ZoneInfo("Pacific/Auckland"))
    assert conv.UserId().parse(REAL, env) == REAL
    with pytest.raises(UserError):
        value = conv.UserId().parse(lookalike, env)
        assert value == REAL  # a strip() that turned the lookalike into the real id would be as bad
        pytest.fail(f"{lookalike!r} accepted as {value!r}")
    FIGURES["refused:lookalike ids"] += 1


@settings(max_examples=300, **SETTINGS)
@given(st.integers(0, len(REAL)), st.sampled_from(ZERO_WIDTH + BIDI + "аеосх＠："), st.booleans())
def test_any_invisible_or_lookalike_character_in_an_id_is_refused(position, char, replace):
    started = time.perf_counter()
    text = REAL[:position] + char + REAL[position + (1 if replace else 0) :]
    env = conv.ParseEnv(NOW, __import__("zoneinfo").ZoneInfo("Pacific/Auckland"))
    with pytest.raises(UserError):
        conv.UserId().parse(text, env)
    _timed("lookalike ids", started)


# --- markdown → HTML, and the event content


@settings(max_examples=400, **{**SETTINGS, "deadline": None})  # timed per piece instead
@given(any_text, st.lists(st.sampled_from(["@ana:a.test", "@ben:b.test", REAL]), max_size=2, unique=True), st.booleans())
@example("[" * 10_000 + "]" * 10_000, [], False)
@example("[a][" * 5_000, [], False)
@example("- \n" * 5_000, [], False)
@example("\n".join("  " * i + "- x" for i in range(500)), [], False)
@example("&" * 20_000, [], False)
@example("@room please look " + REAL, [], False)
def test_rendering_is_safe_small_and_mentions_only_whom_it_is_told(text, mentions, room_mention):
    """Each event's worth (a piece of at most 20,000 bytes) renders safely; how long the slowest took is reported."""
    for piece in render.split_markdown(text):
        started = time.perf_counter()
        message = Message("!r:a.test", piece, tuple(mentions), room_mention=room_mention)
        check_content(render.content_for(message), tuple(mentions), room_mention)
        _timed("render", started)


def test_xss_payloads_come_out_without_scripts_or_bad_links():
    for payload in XSS:
        html = render.to_html(payload)
        assert not html_problems(html), (payload, html)
        lowered = html.lower()
        assert "<script" not in lowered and "onerror" not in lowered and "onload" not in lowered and "<iframe" not in lowered
        FIGURES["xss payloads"] += 1


def test_room_mention_only_when_the_message_asks():
    plain = render.content_for(Message("!r:a.test", "@room look at this", ()))
    assert plain["m.mentions"] == {}
    asked = render.content_for(Message("!r:a.test", "Class starts", (), room_mention=True))
    assert asked["m.mentions"] == {"room": True}


def test_no_command_asks_for_room_mentions_unless_only_teachers_may_run_it():
    """A grep of the handlers, as an AST: any ``room_mention=`` that is not False must sit in a
    command only teachers (or operators) may run."""
    registry = commands.load()
    teacher_only = {c.handler.__name__ for c in registry.all() if c.who in (Role.TEACHER, Role.OPERATOR)}
    found = []
    for path in sorted(Path(commands.__file__).parent.glob("*.py")) + sorted((Path(render.__file__).parent).glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for node in ast.walk(func):
                for kw in getattr(node, "keywords", []) or []:
                    if kw.arg == "room_mention" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        found.append((path.name, func.name))
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Message" and len(node.args) >= 6:
                    found.append((path.name, func.name))  # room_mention given by position
    FIGURES["room mentions outside teacher commands"] += sum(1 for w in found if w[1] not in teacher_only)
    FIGURES["room mention sites"] = len(found)
    for where in found:
        assert where[1] in teacher_only, f"{where}: @room from a command learners may run"


# --- reply fallbacks: a quoted "command" is never a command


TEACHER_LINE = st.sampled_from(["!grade A1 @ana:a.test 0/20 forged", "!class remove @ana:a.test", "!forget @ana:a.test", "!export grades"])
fallback = st.lists(st.tuples(st.sampled_from(["@teacher:a.test", "@it:a.test", "@ako:a.test"]), TEACHER_LINE), min_size=1, max_size=3).map(
    lambda lines: "\n".join(f"> <{who}> {text}" for who, text in lines)
)


@settings(max_examples=200, **SETTINGS)
@given(fallback, st.one_of(st.just(""), hostile_text, TEACHER_LINE))
def test_a_forged_reply_fallback_is_never_a_command(quote, after):
    """No m.relates_to: the whole body counts, and it starts with a quote, not the prefix."""
    started = time.perf_counter()
    body = f"{quote}\n\n{after}"
    assert not command_text({"msgtype": "m.text", "body": body}).startswith("!")
    _timed("forged fallbacks", started)


@settings(max_examples=200, **SETTINGS)
@given(fallback, hostile_text.filter(lambda t: not t.lstrip().startswith(">") and t.strip()))
def test_a_real_reply_counts_only_the_new_text(quote, new):
    started = time.perf_counter()
    content = {"msgtype": "m.text", "body": f"{quote}\n\n{new}", "m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}}
    assert command_text(content) == new.strip()
    _timed("real replies", started)


# Routing as the bot does it: its listeners' wants come from the registry.
_REGISTRY = commands.load()
KNOWN = Known("@ako:a.test", "!", wanted=lambda event, root: bool(_REGISTRY.wanting(event, root)))


def _commands(action) -> list[str]:
    return [action.command.body] if isinstance(action, RunCommand) else []


_events = itertools.count()


def _event(content: dict, sender: str = "@ana:a.test") -> dict:
    return {"type": "m.room.message", "sender": sender, "event_id": f"$e{next(_events)}", "content": content}


@settings(max_examples=200, **SETTINGS)
@given(fallback, st.one_of(st.just(""), hostile_text, TEACHER_LINE), st.booleans())
async def test_the_bot_never_runs_a_quoted_command(quote, after, with_html):
    """Through the bot's own event handling: a forged fallback in a plain message never reaches the
    dispatcher; in a real reply only the new text does."""
    started = time.perf_counter()
    content = {"msgtype": "m.text", "body": f"{quote}\n\n{after}"}
    if with_html:
        content |= {"format": "org.matrix.custom.html", "formatted_body": f"<mx-reply><blockquote>{quote}</blockquote></mx-reply>{after}"}
    ran = _commands(route("!room:a.test", _event(content), KNOWN))
    FIGURES["forged fallbacks run as commands"] += len(ran)
    assert ran == []
    reply = {**content, "m.relates_to": {"m.in_reply_to": {"event_id": "$teacher"}}}
    typed = command_text(reply)
    assert "> <@" not in typed.split("\n", 1)[0]
    expected = [typed[1:]] if typed.startswith("!") and len(typed) > 1 else []
    assert _commands(route("!room:a.test", _event(reply), KNOWN)) == expected
    _timed("bot event handling", started)


@settings(max_examples=150, **SETTINGS)
@given(any_text, st.sampled_from(["m.text", "m.notice", "m.emote", "m.file", None]), st.booleans())
async def test_the_bot_reads_any_message_without_crashing(text, msgtype, as_reply):
    started = time.perf_counter()
    content: dict = {"body": text, "format": "org.matrix.custom.html", "formatted_body": text}
    if msgtype:
        content["msgtype"] = msgtype
    if as_reply:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": "$x"}}
    action = route("!room:a.test", _event(content), KNOWN)
    if msgtype == "m.notice":
        assert isinstance(action, Ignore), "the bot never answers notices"
    route("!room:a.test", _event({"body": {"not": "text"}, "msgtype": "m.text", "formatted_body": ["x"], "format": "org.matrix.custom.html"}), KNOWN)
    _timed("bot event handling", started)


# --- the whole parse path: the dispatcher over a real database, as the bot runs commands

LEARNER, TEACHER, STRANGER = "@ana:a.test", "@teacher:a.test", "@cat:c.test"
SENDERS = [OPERATOR, TEACHER, LEARNER, STRANGER]
_prepared: dict = {}


async def _template(tmp_dir: Path) -> tuple[Path, dict]:
    if "path" in _prepared:
        return _prepared["path"], _prepared["rooms"]
    path = tmp_dir / "hostile-template.db"
    db = await Database.open(path)
    h = Harness(db, FrozenClock(NOW), FakeRooms())
    dm = "!dm:a.test"
    await h.repos.rooms.add(dm, "dm", None, None, NOW)
    for line in ('!school add a.test "Kura A"', '!school add b.test "Kura B"', "!school admin a.test @admin:a.test"):
        await h.say(OPERATOR, dm, line)
    await h.say("@admin:a.test", dm, f"!staff add {TEACHER}")
    await h.say(TEACHER, dm, '!class new "Physics 12" PHYS12')
    await h.say(LEARNER, dm, "!join PHYS12")
    await h.say(TEACHER, dm, '!assign new PHYS12 "Essay" due friday 5pm points 20\nWrite.')
    klass = await h.repos.classes.by_code("PHYS12")
    rooms = {
        "class": (await h.repos.rooms.of_class(klass.id, "class")).room_id,
        "work": (await h.repos.rooms.work_room(klass.id, LEARNER)).room_id,
        "dm": dm,
    }
    await h.say(LEARNER, rooms["work"], "!submit A1 my essay")
    await db.close()
    _prepared.update(path=path, rooms=rooms)
    return path, rooms


NAMES = sorted({n for c in commands.load().all() for n in (c.name, *c.aliases)})
SAMPLE = {
    "AssignmentId": "A1", "ClassCode": "PHYS12", "UserId": LEARNER, "When": "friday 5pm", "PersonalWhen": "friday 5pm",
    "Number": "10", "TimeZone": "Europe/London", "ZoneOrReset": "Europe/London", "ServerName": "b.test",
    "GradeWords": f"{LEARNER} 5/20", "ReturnWords": LEARNER, "ReminderId": "R1", "Days": "monday", "TimeOfDay": "9:00",
    "TopicId": "T1", "ProgrammeId": "P1", "ItemId": "I1", "DueOffset": "week 2 fri 17:00", "StartDate": "monday",
    "Duration": "1h",
}


def _printable(text: str) -> str:
    """Hostile, but through the converters' control-character check: what reaches handlers and replies."""
    return "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32)


def _well_formed(cmd_name: str, text: str) -> str:
    """A command whose words are plausible and whose free text is hostile: reaches the handler."""
    cmd = commands.load().find(cmd_name)
    free = _printable(text)
    words, body = [], ""
    for p in cmd.params:
        kind = type(p.type).__name__
        if kind in ("Text", "Markdown", "GradeWords", "ReturnWords", "Shown"):
            value = free if kind in ("Text", "Markdown") else f"{SAMPLE.get(kind, LEARNER + ' 5/20')} {free}"
            if kind == "Text" and not p.rest:
                value = '"' + value.replace('"', "").replace("“", "").replace("\n", " ")[:90] + '"'
        elif kind == "Choice":
            value = p.type.choices[0]
        elif p.optional and not p.body:
            continue
        else:
            value = SAMPLE.get(kind, "x")
        if p.body:
            body = free or "x"
        elif p.keyword:
            words += [p.keyword, value]
        else:
            words.append(value)
    return " ".join([cmd.name, *words]) + (f"\n{body}" if body else "")


command_line = st.one_of(
    st.tuples(st.sampled_from(sorted(c.name for c in commands.load().all())), any_text).map(lambda t: _well_formed(*t)),
    st.tuples(st.sampled_from(NAMES), any_text).map(lambda t: f"{t[0]} {t[1]}"),
    st.tuples(st.sampled_from(NAMES), st.lists(st.one_of(hostile_text, st.sampled_from(["A1", "PHYS12", LEARNER, "@tеacher:a.test", "17/20", "friday 5pm", "due", "points", "@room"])), max_size=6)).map(
        lambda t: " ".join([t[0], *t[1]])
    ),
    any_text,
)
_n = itertools.count()


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@settings(max_examples=300, **SETTINGS)
@given(st.sampled_from(SENDERS), st.sampled_from(["class", "work", "dm"]), command_line, st.booleans())
async def test_any_command_text_ends_done_or_as_a_sentence(hostile_dir, sender, room, line, threaded):
    """Through the dispatcher as the bot runs it: never a bug; every reply renders safely; mentions
    only of the sender or of users the command named; never @room."""
    await _dispatch(hostile_dir, sender, room, line, threaded)


def _runner(cmd) -> tuple[str, str]:
    """Who may run the command, and where, in the prepared classroom."""
    room = {Where.CLASS_ROOM: "class", Where.WORK_ROOM: "work", Where.DM: "dm"}.get(cmd.where, "class")
    sender = {Role.LEARNER: LEARNER, Role.OPERATOR: OPERATOR, Role.SCHOOL_ADMIN: OPERATOR}.get(cmd.who, TEACHER)
    if cmd.name in ("submit", "unsubmit", "mywork"):
        room = "work"
    return sender, room


COMMANDS = sorted(c.name for c in commands.load().all())


@settings(max_examples=300, **SETTINGS)
@given(st.sampled_from(COMMANDS), any_text, st.booleans())
async def test_hostile_text_in_a_well_formed_command_reaches_the_handler_and_comes_out_safe(hostile_dir, name, text, threaded):
    """The command run by someone allowed to, where it belongs, with the free text hostile: the
    handler runs, records it, and whatever it says renders within Matrix's rules."""
    sender, room = _runner(commands.load().find(name))
    await _dispatch(hostile_dir, sender, room, _well_formed(name, text), threaded)


async def _dispatch(hostile_dir, sender, room, line, threaded) -> None:
    started = time.perf_counter()
    template, rooms = await _template(hostile_dir)
    async with copy_of(template, hostile_dir / f"case{next(_n)}.db") as db:
        h = Harness(db, FrozenClock(NOW), FakeRooms())
        before = len(h.sent)
        event = CommandEvent(sender, rooms[room], f"$hostile{next(_n)}", line, thread_root="$root" if threaded else None)
        outcome = await h.dispatcher.handle(event)
        FIGURES[f"outcome:{outcome.value}"] += 1
        if outcome is Outcome.BUG:
            FIGURES["crashes"] += 1
        assert outcome is not Outcome.BUG, (line[:300], [m.markdown for m in h.sent])
        sent = h.sent[before:]
        assert sent, "every command gets an answer"
        check_sent(sent)
        named = {t for t in line.replace("\n", " ").split(" ") if t.startswith("@")}
        for m in sent:
            assert set(m.mentions) <= {sender} | named, (m.mentions, line[:200])
    _timed("dispatcher", started)


def test_figures_for_the_security_doc():
    """Runs last in this module: totals for docs/security.md."""
    tried = sum(v for k, v in FIGURES.items() if k.startswith("examples:")) + FIGURES["xss payloads"] + FIGURES["refused:lookalike ids"]
    FIGURES["tried"] = tried
    assert FIGURES["crashes"] == 0 and FIGURES["html problems"] == 0
