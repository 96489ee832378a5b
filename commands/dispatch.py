"""From a command message to records and replies, exactly once.

The handler's records, the mark that the event was handled, and the replies it queued are
committed in one transaction; a handler that fails leaves no records, only its error reply.
A command declared private by content, typed where others read it, is taken out of that room and
answered privately, whatever became of it (commands/out_of_view.py).
"""

from __future__ import annotations

import enum
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Awaitable, Callable

from storage.models import Class, Room
from storage.people import Person

from . import admission
from .checks import refusal
from .context import Caller, Context, Message, Redaction, Services
from .converters import class_by_code
from .errors import BadArgument, NotAllowed, UserError
from .out_of_view import exposed, take_out_of_view
from .provision import restore_power
from .registry import Command, Registry, split_message
from .tokens import tokenize

log = logging.getLogger("ako.commands")

Enqueue = Callable[[list[Message | Redaction]], Awaitable[None]]
Also = Callable[[], Awaitable[None]]  # more to commit with the event: the bot's place in the event stream
ECHO_LIMIT = 80  # characters of the user's own text quoted back in a refusal


class Outcome(enum.Enum):
    DONE = "done"
    ALREADY_HANDLED = "already handled"
    REFUSED = "refused"  # not allowed: the caller's role or the room
    USER_ERROR = "user error"  # bad argument, not found, conflict
    BUG = "bug"


@dataclass(frozen=True)
class CommandEvent:
    sender: str
    room_id: str
    event_id: str
    body: str  # the text after the prefix, mentions already written as Matrix ids
    thread_root: str | None = None
    reply_to: str | None = None


@dataclass
class _Progress:
    """How far a command event got before it was done or failed: what its answer needs to know."""

    command: Command | None = None
    room: Room | None = None
    klass: Class | None = None
    ctx: Context | None = None


_ECHO = re.compile(r"“([^”]{%d,})”" % (ECHO_LIMIT + 1))


def shorten_echoes(text: str) -> str:
    """A refusal quotes what was typed (“…”); a 64 KiB paste is quoted by its start only."""
    return _ECHO.sub(lambda m: f"“{m.group(1)[:ECHO_LIMIT]}…”", text)


class Dispatcher:
    def __init__(self, registry: Registry, services: Services, enqueue: Enqueue):
        self.registry = registry
        self.services = services
        self.enqueue = enqueue

    async def caller(self, user_id: str, class_id: int | None, person: Person | None = None) -> Caller:
        """Who is asking, in the class: from ``person`` when it was read already (one query either way)."""
        person = person or await self.services.repos.people.get(user_id)
        return Caller(
            user_id=user_id,
            is_operator=user_id in self.services.settings.operators,
            admin_of=person.admin_of,
            is_staff=person.staff,
            school=person.school,
            class_role=person.role_in(class_id),
        )

    async def handle(self, event: CommandEvent, also: Also | None = None) -> Outcome:
        """Act on one command event, once. Returns what became of it; whatever it returns, ``also``
        was committed with it (also when the event had been handled before)."""
        repos = self.services.repos
        db = repos.db
        progress = _Progress(command=self._named(event.body))
        try:
            async with db.transaction():
                if also is not None:
                    await also()
                if not await repos.sync.mark_processed(event.event_id, event.room_id, self.services.clock.now()):
                    return Outcome.ALREADY_HANDLED
                ctx = await self._run(event, progress)
                outgoing = ctx.outgoing
                if progress.command.private and await exposed(ctx, outgoing):
                    outgoing = await take_out_of_view(ctx, progress.command.name, outgoing, refused=False)
                await self.enqueue(outgoing)
            return Outcome.DONE
        except UserError as e:
            text = shorten_echoes(e.message)
            cmd = getattr(e, "command", None)
            if e.show_usage and isinstance(cmd, Command):
                text += f"\nUsage: `{cmd.usage(self.services.settings.prefix)}`"
                if cmd.params:
                    text += f" · `{self.services.settings.prefix}help {cmd.name}` explains it."
            await self._answer_only(event, text, progress, also)
            return Outcome.REFUSED if isinstance(e, NotAllowed) else Outcome.USER_ERROR
        except Exception:
            ref = secrets.token_hex(2)
            log.exception("Command failed (ref %s) in %s from %s: %r", ref, event.room_id, event.sender, event.body[:200])
            await self._answer_only(event, f"Something went wrong (ref {ref}) — the admins have the details.", progress, also)
            return Outcome.BUG

    def _named(self, body: str) -> Command | None:
        """The command a message names, read from its first words alone, so that even a message the
        tokenizer refuses is known for what it is (a private command is answered privately whatever happens)."""
        words = body.split("\n", 1)[0].lower().split()
        for size in (3, 2, 1):
            if len(words) >= size and (found := self.registry.find(" ".join(words[:size]))) is not None:
                return found
        return None

    async def concerned(self, room_id: str, event: dict, thread_root: str | None) -> bool:
        """Whether a listener wants this ordinary message, its records consulted (reads only)."""
        for listener in self.registry.wanting(event, thread_root):
            if listener.concerns is None or await listener.concerns(self.services.repos, room_id, thread_root):
                return True
        return False

    async def observe(self, sender: str, room_id: str, event: dict, thread_root: str | None, also: Also | None = None) -> bool:
        """Let the listeners that want an ordinary message see it, once (its id is marked processed
        with their records, and ``also`` committed with them). False when none acted on it now."""
        listeners = self.registry.wanting(event, thread_root)
        if not listeners:
            return False
        repos = self.services.repos
        try:
            async with repos.db.transaction():
                if also is not None:
                    await also()
                if not await repos.sync.mark_processed(event["event_id"], room_id, self.services.clock.now()):
                    return False
                room = await repos.rooms.get(room_id)
                klass = await repos.classes.get(room.class_id) if room and room.class_id is not None else None
                ctx = Context(
                    caller=await self.caller(sender, klass.id if klass else None),
                    room_id=room_id,
                    room=room,
                    klass=klass,
                    event_id=event["event_id"],
                    thread_root=thread_root,
                    reply_to=None,
                    services=self.services,
                    event=event,
                )
                for listener in listeners:
                    await listener.handler(ctx)
                await self.enqueue(ctx.outgoing)
            return True
        except Exception:
            log.exception("A listener failed on %s in %s", event.get("event_id"), room_id)
            return False

    async def power_changed(self, sender: str, room_id: str, content: dict) -> list[str]:
        """Someone other than Ako changed power levels in a room it manages: restore the records' levels."""
        room = await self.services.repos.rooms.get(room_id)
        if room is None:
            return []
        ctx = Context(
            caller=await self.caller(sender, room.class_id),
            room_id=room_id, room=room, klass=None, event_id="", thread_root=None, reply_to=None, services=self.services,
        )
        changed = await restore_power(ctx, room_id, content)
        if changed:
            log.warning("%s changed power levels in %s; restored %s to what Ako's records say", sender, room_id, ", ".join(changed))
        return changed

    async def _answer_only(self, event: CommandEvent, text: str, progress: _Progress, also: Also | None) -> None:
        """The refusal (or bug notice), in a transaction of its own: the command's was rolled back."""
        async with self.services.repos.db.transaction():
            if also is not None:
                await also()
            await self.services.repos.sync.mark_processed(event.event_id, event.room_id, self.services.clock.now())
            answer: list[Message | Redaction] = [Message(event.room_id, text, reply_to=event.event_id, thread_root=event.thread_root)]
            if progress.command is not None and progress.command.private:
                answer = await self._privately(event, answer, progress)
            await self.enqueue(answer)

    async def _privately(self, event: CommandEvent, answer: list[Message | Redaction], progress: _Progress) -> list[Message | Redaction]:
        """A refused private command: out of a room others read, answered privately (see out_of_view)."""
        name = progress.command.name
        try:
            ctx = progress.ctx
            if ctx is None:
                room = progress.room or await self.services.repos.rooms.get(event.room_id)
                klass = progress.klass
                if klass is None and room is not None and room.class_id is not None:
                    klass = await self.services.repos.classes.get(room.class_id)
                ctx = Context(
                    caller=await self.caller(event.sender, klass.id if klass else None),
                    room_id=event.room_id, room=room, klass=klass, event_id=event.event_id, thread_root=event.thread_root,
                    reply_to=event.reply_to, services=self.services, command_name=name,
                )
            if not await exposed(ctx, typed=event.body):
                return answer
            return await take_out_of_view(ctx, name, answer, refused=True)
        except Exception:  # never leave it in public for want of a private room: remove it, say nothing of it
            log.exception("Could not answer %s's refused %s privately in %s", event.sender, name, event.room_id)
            prefix = self.services.settings.prefix
            return [
                Redaction(event.room_id, event.event_id, f"{prefix}{name} is answered privately."),
                Message(
                    event.room_id, f"I removed a message from {event.sender}: `{prefix}{name}` is answered only in private.",
                    reply_to=event.event_id, thread_root=event.thread_root,
                ),
            ]

    async def _run(self, event: CommandEvent, progress: _Progress) -> Context:
        repos = self.services.repos
        prefix = self.services.settings.prefix
        person = await repos.people.get(event.sender)
        blocked = admission.refusal(admission.of_person(person, self.services.settings))
        if blocked:
            raise NotAllowed(blocked)
        line, body = split_message(event.body)
        tokens = tokenize(line)
        room, klass = await repos.rooms.with_class(event.room_id)
        progress.room = room
        cmd, tokens = self.registry.resolve(tokens, prefix, code_may_lead=klass is None)
        progress.command = cmd
        code = None
        try:
            if cmd.needs_class and klass is None and not (tokens and await repos.classes.by_code(tokens[0].text)):
                marked = await repos.marking.class_marked_in(event.sender, event.room_id)  # marking in a DM
                klass = await repos.classes.get(marked) if marked is not None else None
            if cmd.needs_class and klass is None:
                if not tokens:
                    raise BadArgument(
                        f"Run {prefix}{cmd.name} in one of the class's rooms, or name the class by its code: "
                        f"`{cmd.usage(prefix, code='CODE')}`."
                    )
                klass = await class_by_code(repos, event.sender, tokens[0].text)
                code, tokens = tokens[0].text, tokens[1:]
            progress.klass = klass
            caller = await self.caller(event.sender, klass.id if klass else None, person)
            ctx = Context(
                caller=caller,
                room_id=event.room_id,
                room=room,
                klass=klass,
                event_id=event.event_id,
                thread_root=event.thread_root,
                reply_to=event.reply_to,
                services=self.services,
                command_name=cmd.name,
            )
            progress.ctx = ctx
            refused = refusal(cmd, ctx)
            if refused:
                raise NotAllowed(refused)
            # the prefix and command words are cut from the line before tokenising the arguments
            args = await self.registry.arguments(cmd, line, tokens, body, ctx, prefix, code)
            await cmd.handler(ctx, **args)
            return ctx
        except UserError as e:
            e.command = cmd  # type: ignore[attr-defined]
            raise
