"""What a handler said, as outbox rows: the one translation from replies, redactions and room
changes to the events the outbox sends. The runtime and the tests queue replies through it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Awaitable, Callable, Iterable

from commands.context import Message, Redaction, RoomChange

from . import render

Upload = Callable[[bytes, str, str], Awaitable[str]]  # (data, filename, mimetype) → mxc:// URL


@dataclass(frozen=True)
class Row:
    """One event for the outbox to send. ``ako.kick``, ``ako.leave`` and ``ako.state`` are room
    changes the sender carries out with the matching request, not events of those types."""

    room_id: str
    event_type: str
    content: dict
    txn_id: str | None = None  # a stable key makes the send idempotent across replays


async def rows_of(messages: Iterable[Message | Redaction | RoomChange], upload: Upload) -> list[Row]:
    """The outbox rows for ``messages``, in order. A file is uploaded first (the row needs its URL);
    nothing else touches the network."""
    rows: list[Row] = []
    for message in messages:
        if isinstance(message, Redaction):
            rows.append(Row(message.room_id, "m.room.redaction", {"redacts": message.event_id, "reason": message.reason}))
        elif isinstance(message, RoomChange):
            content = {
                "kick": lambda: {"user_id": message.user_id, "reason": message.reason},
                "leave": lambda: {},
                "state": lambda: {"type": message.event_type, "state_key": "", "content": message.content},
            }[message.kind]()
            rows.append(Row(message.room_id, f"ako.{message.kind}", content))
        elif message.file is not None:
            data, filename, mimetype = message.file
            mxc = await upload(data, filename, mimetype)
            content = {"msgtype": "m.file", "body": filename, "filename": filename, "url": mxc, "info": {"mimetype": mimetype, "size": len(data)}}
            key = message.txn_key
            if message.markdown:
                rows.append(Row(message.room_id, "m.room.message", render.content_for(message), key))
                key = key and f"{key}.file"
            rows.append(Row(message.room_id, "m.room.message", content, key))
        elif message.media is not None:
            rows.append(Row(message.room_id, "m.room.message", render.media_content(message), message.txn_key))
        else:
            for i, piece in enumerate(render.split_markdown(message.markdown)):
                # the first event carries the stable key as is, so the outbox can name it by that key
                key = message.txn_key and (message.txn_key if i == 0 else f"{message.txn_key}.{i + 1}")
                rows.append(Row(message.room_id, "m.room.message", render.content_for(replace(message, markdown=piece)), key))
    return rows


async def queue(outbox, messages: Iterable[Message | Redaction | RoomChange], upload: Upload, now: datetime) -> list[Row]:
    """Put the rows for ``messages`` in the outbox. Called inside the handler's transaction, so the
    replies commit with the records or not at all."""
    rows = await rows_of(messages, upload)
    for row in rows:
        await outbox.put(row.room_id, row.event_type, row.content, now, txn_id=row.txn_id)
    return rows
