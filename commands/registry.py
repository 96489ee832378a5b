"""Commands, declared once.

A declaration names the command, who may run it and where, and one line of help; its typed
parameters are the handler's own signature (``assignment: Annotated[Assignment, AssignmentRef()]``,
as discord.py's ``ext.commands`` reads them). From it come parsing, the usage line, permission
checks and ``!help``.

A subcommand may be declared ``word_after_first=True``: its last name word is then written after
the command's first argument, as SPEC §3 writes ``!assign edit A1 due monday 9am`` (the command
"assign edit due", arguments ``A1 monday 9am``). discord.py's order, ``!assign edit due A1 monday
9am``, is read too; usage and help show the spec's. Its siblings (the commands that share all
words but the last, its group) each change one thing: the group alone, or with a word that is none
of theirs, gets a sentence naming them.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Awaitable, Callable, get_args, get_origin

from .checks import Check
from .context import Role, Where
from .converters import Converter, Markdown, Text
from .errors import BadArgument, UnknownCommand
from .tokens import Token

Handler = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Keyword:
    """Annotation metadata: the parameter is written as ``<word> <value>``, in any order after the positionals."""

    word: str


class Rest:
    """Annotation metadata: the parameter is the rest of the message, including following lines."""


class Body:
    """Annotation metadata: the parameter is the lines after the command line (markdown)."""


@dataclass(frozen=True)
class Param:
    """One parameter of a command, read from the handler's annotated signature: optional when it has a
    default, several values (`@user…`) when its type is a list."""

    name: str
    type: Converter
    optional: bool = False
    keyword: str | None = None
    many: bool = False
    rest: bool = False
    body: bool = False

    def usage(self) -> str:
        written = self.type.written
        if written and not self.keyword:
            return written  # the whole of it, optional parts and all
        metavar = self.type.metavar
        value = written or (metavar if "|" in metavar else f"<{metavar}>")
        if self.body:
            text = f"<{metavar} on the following lines>"
        elif self.keyword:
            text = f"{self.keyword} {value}"
        elif self.many:
            text = value + "…"
        elif isinstance(self.type, Text) and not self.rest and not isinstance(self.type, Markdown):
            text = f'"{value}"'
        else:
            text = value
        return f"[{text}]" if self.optional else text


@dataclass(frozen=True)
class Command:
    name: str  # one or two words: "join", "class new"
    handler: Handler
    params: tuple[Param, ...]
    who: Role
    where: Where
    summary: str
    aliases: tuple[str, ...] = ()
    details: str = ""
    reads_only: bool = False  # still allowed in an archived class
    checks: tuple[Check, ...] = ()
    private: bool = False  # private by content: typed where others read it, it is taken out and answered privately
    word_after_first: bool = False  # the last name word is written after the first argument: `!assign edit A1 due …`

    @property
    def group(self) -> str:
        """The name without its last word: "assign edit" for "assign edit due"."""
        return self.name.rsplit(" ", 1)[0]

    @property
    def last_word(self) -> str:
        return self.name.rsplit(" ", 1)[-1]

    @property
    def needs_class(self) -> bool:
        return self.where in (Where.CLASS, Where.CLASS_ROOM, Where.WORK_ROOM, Where.OWN_WORK_ROOM_OR_CLASS_ROOM) or self.who in (
            Role.TEACHER,
            Role.MEMBER,
            Role.LEARNER,
        )

    def usage(self, prefix: str, code: str | None = None) -> str:
        """How to write it, in the spec's order; with ``code``, the class code put first (a direct message)."""
        return self.written(prefix, [p.usage() for p in self.params], code)

    def written(self, prefix: str, args: list[str], code: str | None = None) -> str:
        """The command with these arguments, its last word after the first of them when declared so."""
        lead = [code] if code else []
        if self.word_after_first and args:
            return " ".join([prefix + self.group, *lead, args[0], self.last_word, *args[1:]])
        return " ".join([prefix + self.name, *lead, *args])

    def permission_text(self) -> str:
        return {
            Role.ANYONE: "anyone",
            Role.OPERATOR: "operators",
            Role.SCHOOL_ADMIN: "school admins",
            Role.STAFF: "staff",
            Role.TEACHER: "teachers of the class",
            Role.MEMBER: "teachers and learners of the class",
            Role.LEARNER: "learners of the class",
        }[self.who]


Wants = Callable[[dict, "str | None"], bool]  # (the raw event, its thread root) → whether a listener wants it


def thread_replies(event: dict, thread_root: str | None) -> bool:
    """A listener's want: messages in a thread."""
    return thread_root is not None


def every_message(event: dict, thread_root: str | None) -> bool:
    return True


Concerns = Callable[[Any, str, "str | None"], Awaitable[bool]]  # (repositories, room, thread root) → read-only check


@dataclass(frozen=True)
class Listener:
    handler: Handler
    wants: Wants  # from the event alone
    concerns: Concerns | None = None  # then from the records, read only: no transaction for what it will not record


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)
    _by_alias: dict[str, Command] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)

    def listener(self, wants: Wants = every_message, concerns: Concerns | None = None) -> Callable[[Handler], Handler]:
        """Declare a handler for ordinary (non-command) messages in rooms the bot is in, such as
        thread replies to count, and which messages it wants: from the event alone (a message no
        listener wants costs nothing: no transaction, no query, no record), then, with
        ``concerns``, from the records (a read, no write). It receives a Context whose ``event`` is the raw event."""

        def register(handler: Handler) -> Handler:
            self.listeners.append(Listener(handler, wants, concerns))
            return handler

        return register

    def wanting(self, event: dict, thread_root: str | None) -> list[Listener]:
        """The listeners that want this ordinary message."""
        return [li for li in self.listeners if li.wants(event, thread_root)]

    def command(
        self,
        name: str,
        *,
        who: Role,
        where: Where = Where.ANYWHERE,
        summary: str,
        aliases: tuple[str, ...] = (),
        details: str = "",
        reads_only: bool = False,
        checks: tuple[Check, ...] | list[Check] = (),
        private: bool = False,
        word_after_first: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare a command. With ``word_after_first``, the name's last word is written after the
        first argument (see the module's docstring); the first parameter is then one required word."""

        def register(handler: Handler) -> Handler:
            cmd = Command(
                name, handler, params_of(handler), who, where, summary, aliases, details, reads_only, tuple(checks), private,
                word_after_first,
            )
            _check_declaration(cmd)
            for key in (name, *aliases):
                if key in self._by_alias:
                    raise ValueError(f"Command name {key!r} declared twice.")
                if self.written_after_first(key) or (word_after_first and cmd.group in self._by_alias):
                    raise ValueError(f"{key!r} is both a command and a group whose words come after the first argument.")
                self._by_alias[key] = cmd
            self.commands[name] = cmd
            return handler

        return register

    def all(self) -> list[Command]:
        return sorted(self.commands.values(), key=lambda c: c.name)

    def find(self, name: str) -> Command | None:
        return self._by_alias.get(" ".join(name.lower().split()))

    def replace_handler(self, name: str, handler: Handler) -> None:
        """Run another handler for a declared command, under every one of its names (the fault
        tests make one fail this way: devtools/faulty_bot.py)."""
        old = self.commands[name]
        new = replace(old, handler=handler)
        self.commands[name] = new
        for alias, cmd in self._by_alias.items():
            if cmd is old:
                self._by_alias[alias] = new

    def groups(self) -> set[str]:
        return {n.split()[0] for n in self._by_alias if " " in n}

    def written_after_first(self, group: str) -> dict[str, Command]:
        """The subcommands of ``group`` whose last word comes after the first argument, by that word."""
        return {c.last_word: c for c in self.commands.values() if c.word_after_first and c.group == group}

    def resolve(self, tokens: list[Token], prefix: str, *, code_may_lead: bool = False) -> tuple[Command, list[Token]]:
        """The command the tokens name, and the tokens of its arguments. The longest name wins
        ("class teacher add" before "class"). A group of ``word_after_first`` subcommands counts as
        a name of its own length: its subcommand's word is looked for right after it (discord.py's
        order), then after the first argument; with ``code_may_lead`` (a room of no class, where a
        class code may come first) also after the second."""
        if not tokens or tokens[0].quoted:
            raise UnknownCommand(f"Type a command after {prefix}; {prefix}help lists them.")
        first = tokens[0].text.lower()
        for size in (3, 2, 1):  # the longest name wins: "class teacher add" before "class"
            words = tokens[:size]
            if len(words) < size or any(t.quoted for t in words):
                continue
            name = " ".join(t.text.lower() for t in words)
            found = self._by_alias.get(name)
            if found:
                return found, tokens[size:]
            subs = self.written_after_first(name)
            if subs:
                return _word_after_first(name, subs, tokens[size:], prefix, code_may_lead)
        if first in self.groups():
            subs = sorted({n.split()[1] for n in self._by_alias if n.startswith(first + " ")})
            given = f" “{tokens[1].text}”" if len(tokens) > 1 else ""
            raise UnknownCommand(
                f"{prefix}{first} needs one of: {', '.join(subs)} (not{given or ' nothing'}). "
                f"{prefix}help {first} shows how."
            )
        names = sorted(self._by_alias)
        near = difflib.get_close_matches(first, [n.split()[0] for n in names], n=1) if len(first) <= 40 else []
        hint = f" Did you mean {prefix}{near[0]}?" if near else ""
        shown = first if len(first) <= 40 else first[:40] + "…"
        raise UnknownCommand(f"I don't know the command {prefix}{shown}.{hint} {prefix}help lists what you can do here.")

    async def arguments(
        self, cmd: Command, line: str, tokens: list[Token], body: str, ctx: Any, prefix: str, code: str | None = None
    ) -> dict[str, Any]:
        """The command's arguments (:func:`parse_args`). A ``word_after_first`` subcommand changes one
        thing: when its value does not read and holds a sibling's word (``!assign edit A1 due monday
        9am cutoff tuesday``), the answer gives the two commands to send instead (with the class
        ``code`` the command was given, if any)."""
        try:
            return await parse_args(cmd, line, tokens, body, ctx)
        except BadArgument:
            if not cmd.word_after_first:
                raise
            subs = self.written_after_first(cmd.group)
            at = next((i for i, t in enumerate(tokens[1:], 1) if not t.quoted and t.text.lower() in subs), None)
            if at is None:
                raise
            other = subs[tokens[at].text.lower()]
            first, value, rest = tokens[0].text, tokens[1:at], tokens[at + 1 :]
            one = cmd.written(prefix, [first, _span(line, value) if value else _value_usage(cmd)], code)
            two = other.written(prefix, [first, _span(line, rest) if rest else _value_usage(other)], code)
            raise BadArgument(f"One change per command: send `{one}`, then `{two}`.") from None


def _value_usage(cmd: Command) -> str:
    return " ".join(p.usage() for p in cmd.params[1:])


def _word_after_first(
    group: str, subs: dict[str, Command], args: list[Token], prefix: str, code_may_lead: bool
) -> tuple[Command, list[Token]]:
    """The subcommand whose word follows the first argument (or the class code and the first
    argument), and the arguments without that word; or a sentence naming the subcommands."""
    for at in (1, 2) if code_may_lead else (1,):
        if len(args) > at and not args[at].quoted and args[at].text.lower() in subs:
            return subs[args[at].text.lower()], args[:at] + args[at + 1 :]
    first = next(iter(subs.values())).params[0]
    if not args:
        given = ""
    elif len(args) == 1:
        given = f" (nothing came after “{args[0].text}”)"
    else:
        given = f" (not “{args[1].text}”)"
    usages = " · ".join(f"`{c.usage(prefix)}`" for c in subs.values())
    raise UnknownCommand(f"{prefix}{group} needs one of: {', '.join(subs)}, after the {first.type.metavar}{given}.\nUsage: {usages}")


def params_of(handler: Handler) -> tuple[Param, ...]:
    """The parameters a handler declares after its context: ``name: Annotated[type, Converter(), …]``."""
    hints = typing.get_type_hints(handler, include_extras=True)
    found = []
    for name, p in list(inspect.signature(handler).parameters.items())[1:]:
        hint = hints.get(name)
        if get_origin(hint) is not Annotated:
            raise ValueError(f"{handler.__qualname__}: parameter {name} needs Annotated[<type>, <Converter>()].")
        base, *meta = get_args(hint)
        converters = [m for m in meta if isinstance(m, Converter)]
        if len(converters) != 1:
            raise ValueError(f"{handler.__qualname__}: parameter {name} needs exactly one converter.")
        keyword = next((m.word for m in meta if isinstance(m, Keyword)), None)
        found.append(
            Param(
                name,
                converters[0],
                optional=p.default is not inspect.Parameter.empty,
                keyword=keyword,
                many=_is_list(base),
                rest=any(isinstance(m, Rest) or m is Rest for m in meta),
                body=any(isinstance(m, Body) or m is Body for m in meta),
            )
        )
    return tuple(found)


def _is_list(hint: Any) -> bool:
    if get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    return get_origin(hint) is list


def _check_declaration(cmd: Command) -> None:
    if not cmd.summary.strip():
        raise ValueError(f"{cmd.name}: every command needs a one-line summary.")
    if cmd.word_after_first:
        first = cmd.params[0] if cmd.params else None
        if " " not in cmd.name or cmd.aliases:
            raise ValueError(f"{cmd.name}: a word written after the first argument needs a name of two or more words and no aliases.")
        if first is None or first.optional or first.keyword or first.many or first.rest or first.body or first.type.greedy:
            raise ValueError(f"{cmd.name}: its last word comes after the first argument, which must be one required word.")
    seen_optional = False
    for p in cmd.params:
        if p.keyword or p.body:
            continue
        if p.optional:
            seen_optional = seen_optional or p.many or p.type.greedy
        elif seen_optional:
            raise ValueError(f"{cmd.name}: required parameter {p.name} follows an optional one that takes several words.")


async def parse_args(cmd: Command, line: str, tokens: list[Token], body: str, ctx: Any) -> dict[str, Any]:
    """Bind tokens (after the command name) and the following lines to the declared parameters."""
    args: dict[str, Any] = {}
    keywords = {p.keyword: p for p in cmd.params if p.keyword}
    positional = [p for p in cmd.params if not p.keyword and not p.body]

    # Split off `keyword value…` segments, in any order, after the positional words.
    segments: dict[str, list[Token]] = {}
    head: list[Token] = []
    current: list[Token] | None = None
    rest_param = next((p for p in positional if p.rest), None)
    for i, tok in enumerate(tokens):
        key = tok.text.lower()
        if not tok.quoted and key in keywords and key not in segments and not (rest_param and current is None and _rest_started(positional, head)):
            current = segments[key] = []
            continue
        (current if current is not None else head).append(tok)

    await _bind_positionals(cmd, positional, line, head, body, ctx, args)

    for key, param in keywords.items():
        toks = segments.get(key)
        if toks is None:
            if not param.optional:
                raise BadArgument(f"{cmd.name} needs {param.usage()}.")
            args[param.name] = None
            continue
        if not toks:
            raise BadArgument(f"“{key}” must be followed by a {param.type.metavar}.")
        if len(toks) > 1 and not param.type.greedy:
            raise BadArgument(f"“{key}” takes one {param.type.metavar}, not “{_span(line, toks)}”.")
        args[param.name] = await param.type.convert(ctx, _span(line, toks))

    for param in cmd.params:
        if param.optional and not param.many and args.get(param.name) is None and not param.body:
            args[param.name] = await param.type.default(ctx)
        if param.body:
            if not body.strip():
                if not param.optional:
                    raise BadArgument(f"Put the {param.type.metavar} on the lines after the command.")
                args[param.name] = None
            else:
                args[param.name] = await param.type.convert(ctx, body)
    return args


def _rest_started(positional: list[Param], head: list[Token]) -> bool:
    """Once the positionals before a rest-of-line parameter are filled, keywords are plain words."""
    before = [p for p in positional if not p.rest]
    return len(head) >= len(before) and any(p.rest for p in positional)


def _span(line: str, toks: list[Token]) -> str:
    """The original text the tokens cover, quotes removed for a single quoted token."""
    if len(toks) == 1 and toks[0].quoted:
        return toks[0].text
    return line[toks[0].start : toks[-1].end]


async def _bind_positionals(cmd, params, line, toks, body, ctx, args) -> None:
    """An optional single-word parameter whose converter refuses the word is left out and the word
    goes to the next parameter (as discord.py does for ``Optional``): ``!grade 17`` in a marking
    session, ``!programme add "…"`` in a programme's room. Its sentence is kept for when nothing
    else takes the word."""
    i = 0
    passed_over: BadArgument | None = None
    for n, param in enumerate(params):
        remaining = toks[i:]
        later_required = sum(1 for p in params[n + 1 :] if not p.optional and not p.rest)
        if param.rest:
            text = _span(line, remaining) if remaining else ""
            if body.strip() and not any(p.body for p in cmd.params):
                text = f"{text}\n{body}" if text else body
            if not text.strip():
                if not param.optional:
                    raise BadArgument(f"{cmd.name} needs {param.usage()}.")
                args[param.name] = None
            else:
                args[param.name] = await param.type.convert(ctx, text)
            i = len(toks)
            continue
        if not remaining or (param.optional and len(remaining) <= later_required):
            if not param.optional:
                raise BadArgument(f"{cmd.name} needs {param.usage()}.")
            args[param.name] = [] if param.many else None
            continue
        if param.many:
            take = len(remaining) - later_required
            args[param.name] = [await param.type.convert(ctx, t.text) for t in remaining[:take]]
            i += take
            continue
        if param.type.greedy:
            limit = len(remaining) - later_required
            has_rest = any(p.rest for p in params[n + 1 :])
            error: BadArgument | None = None
            for take in range(limit, 0, -1):
                try:
                    args[param.name] = await param.type.convert(ctx, _span(line, remaining[:take]))
                    i += take
                    break
                except BadArgument as e:
                    error = error or e
                    if not has_rest and take == limit:
                        raise
            else:
                raise error or BadArgument(f"{cmd.name} needs {param.usage()}.")
            continue
        if param.optional and n + 1 < len(params):
            try:
                args[param.name] = await param.type.convert(ctx, remaining[0].text)
            except BadArgument as e:
                args[param.name] = None
                passed_over = passed_over or e
                continue
            i += 1
            continue
        args[param.name] = await param.type.convert(ctx, remaining[0].text)
        i += 1
    if i < len(toks):
        keywords = [p.keyword for p in cmd.params if p.keyword]
        takes = f" After {' '.join(p.usage() for p in params)} come: {', '.join(keywords)}." if keywords else ""
        raise passed_over or BadArgument(f"I didn't expect “{_span(line, toks[i:])}” here.{takes}")


def split_message(text: str) -> tuple[str, str]:
    """The command line and the lines after it."""
    first, _, rest = text.strip("\n").partition("\n")
    return first.strip(), rest


registry = Registry()
