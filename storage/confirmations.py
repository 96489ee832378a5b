"""Actions waiting for ``!confirm`` from one user in one room (commands/confirm.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .db import Repository
from .models import from_row, to_text


@dataclass(frozen=True)
class PendingConfirmation:
    id: int
    user_id: str
    room_id: str
    action: str
    payload: dict[str, Any]
    question: str
    created_at: datetime
    expires_at: datetime


class Confirmations(Repository):
    """Actions waiting for `!confirm` from one user in one room."""

    async def put(
        self, user_id: str, room_id: str, action: str, payload: dict, question: str, at: datetime, expires_at: datetime
    ) -> None:
        await self.db.execute(
            "INSERT INTO pending_confirmations (user_id, room_id, action, payload, question, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, room_id) DO UPDATE SET action = excluded.action, "
            "payload = excluded.payload, question = excluded.question, created_at = excluded.created_at, "
            "expires_at = excluded.expires_at",
            (user_id, room_id, action, json.dumps(payload), question, to_text(at), to_text(expires_at)),
        )

    async def take(self, user_id: str, room_id: str) -> PendingConfirmation | None:
        """The user's pending action in the room, removed so it runs at most once (expired or not)."""
        row = await self.db.fetchone(
            "SELECT * FROM pending_confirmations WHERE user_id = ? AND room_id = ?", (user_id, room_id)
        )
        if row is None:
            return None
        await self.db.execute("DELETE FROM pending_confirmations WHERE id = ?", (row["id"],))
        return from_row(PendingConfirmation, row)

    async def forget_expired(self, now: datetime) -> int:
        cur = await self.db.execute("DELETE FROM pending_confirmations WHERE expires_at <= ?", (to_text(now),))
        return cur.rowcount
