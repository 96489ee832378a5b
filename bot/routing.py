"""What an event from a sync is to Ako, decided without I/O: a command to run, a message a
listener wants, power levels to put back, an encrypted message still unreadable, an invite to
answer, or nothing. The Ako object acts on the answer (bot/runtime.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from commands.dispatch import CommandEvent

from .mentions import command_text


@dataclass(frozen=True)
class Known:
    """What routing needs to know: who Ako is, its prefix, and which messages its listeners want."""

    bot_user_id: str
    prefix: str
    wanted: Callable[[dict, "str | None"], bool] = lambda event, thread_root: False


@dataclass(frozen=True)
class RunCommand:
    command: CommandEvent


@dataclass(frozen=True)
class ShowListeners:
    """An ordinary message some listener wants (a thread reply to count)."""

    sender: str
    room_id: str
    event: dict
    thread_root: str | None


@dataclass(frozen=True)
class RestorePower:
    """Someone changed a room's power levels: the records' levels are put back."""

    sender: str
    room_id: str
    content: dict


@dataclass(frozen=True)
class AwaitKey:
    """An encrypted event nio could not decrypt: wait for its key, or tell the sender."""

    room_id: str
    event: dict


@dataclass(frozen=True)
class AnswerInvite:
    """Ako was invited: whether to accept is the classroom's decision (commands/admission.py)."""

    room_id: str
    inviter: str
    direct: bool


@dataclass(frozen=True)
class Ignore:
    pass


IGNORE = Ignore()
Action = RunCommand | ShowListeners | RestorePower | AwaitKey | AnswerInvite | Ignore


def route(room_id: str, event: dict, known: Known) -> Action:
    """What a timeline event of a joined room asks of Ako."""
    if event.get("sender") == known.bot_user_id:
        return IGNORE
    kind = event.get("type")
    if kind == "m.room.encrypted":  # nio decrypted what it could; this it could not
        return AwaitKey(room_id, event)
    if kind == "m.room.power_levels" and event.get("state_key") == "":
        return RestorePower(event["sender"], room_id, event.get("content") or {})
    if kind != "m.room.message":
        return IGNORE
    content = event.get("content") or {}
    if not isinstance(content, dict) or content.get("msgtype") == "m.notice" or content.get("m.new_content") is not None:
        return IGNORE  # Ako never answers a notice (bots talk in notices), nor an edit
    relates = content.get("m.relates_to") or {}
    if not isinstance(relates, dict) or relates.get("rel_type") == "m.replace":
        return IGNORE
    body = command_text(content)
    thread_root = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
    if not body.startswith(known.prefix) or len(body) <= len(known.prefix):
        if known.wanted(event, thread_root):
            return ShowListeners(event["sender"], room_id, event, thread_root)
        return IGNORE
    reply_to = None if relates.get("is_falling_back") else (relates.get("m.in_reply_to") or {}).get("event_id")
    return RunCommand(
        CommandEvent(
            sender=event["sender"],
            room_id=room_id,
            event_id=event["event_id"],
            body=body[len(known.prefix) :],
            thread_root=thread_root,
            reply_to=reply_to,
        )
    )


def route_invite(room_id: str, invite_state: Iterable, known: Known) -> AnswerInvite | Ignore:
    """An invite, from nio's stripped state: who invited Ako, and whether as a direct message."""
    found: AnswerInvite | Ignore = IGNORE
    for ev in invite_state:
        if getattr(ev, "state_key", None) == known.bot_user_id and getattr(ev, "membership", None) == "invite":
            content = getattr(ev, "content", None) or {}
            found = AnswerInvite(room_id, ev.sender, bool(content.get("is_direct")) if isinstance(content, dict) else False)
    return found


def own_join_at(events: list[dict], bot_user_id: str) -> int | None:
    """Where the bot's latest join is among ``events`` (a profile change is not a join)."""
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if e.get("type") == "m.room.member" and e.get("state_key") == bot_user_id and (e.get("content") or {}).get("membership") == "join":
            before = ((e.get("unsigned") or {}).get("prev_content") or {}).get("membership")
            if before != "join":
                return i
    return None


def after_own_join(events: list[dict], bot_user_id: str) -> list[dict]:
    """Only what happened after the bot joined counts; without our join in view, nothing does."""
    i = own_join_at(events, bot_user_id)
    return [] if i is None else events[i + 1 :]


def carrier(actions: list[Action]) -> int | None:
    """Which of a batch's actions, by index, commits the batch's sync position with its own records:
    the last one that acts at all, if the dispatcher handles it in a transaction (a command or a
    listened-to message). A crash before it replays the batch, whose earlier events are marked
    processed; after it, nothing of the batch is left undone. None: the position is saved alone."""
    for i in range(len(actions) - 1, -1, -1):
        if isinstance(actions[i], Ignore):
            continue
        return i if isinstance(actions[i], (RunCommand, ShowListeners)) else None
    return None
