"""Each user's own settings: the time zone their times are shown in, and their digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Repository
from .models import from_row, to_text


@dataclass(frozen=True)
class UserSettings:
    user_id: str
    timezone: str | None
    digest: str  # off | daily | weekly
    digest_since: datetime | None
    digest_last_slot: datetime | None


class Users(Repository):
    async def get(self, user_id: str) -> UserSettings:
        row = await self.db.fetchone("SELECT * FROM user_settings WHERE user_id = ?", (user_id,))
        return UserSettings(user_id, None, "off", None, None) if row is None else from_row(UserSettings, row)

    async def timezone(self, user_id: str) -> str | None:
        return await self.db.fetchval("SELECT timezone FROM user_settings WHERE user_id = ?", (user_id,))

    async def set_timezone(self, user_id: str, zone: str | None, at: datetime) -> None:
        await self.db.execute(
            "INSERT INTO user_settings (user_id, timezone, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at",
            (user_id, zone, to_text(at)),
        )

    async def set_digest(self, user_id: str, digest: str, at: datetime) -> None:
        """Turn the digest on (daily/weekly: it covers from now) or off."""
        since = None if digest == "off" else to_text(at)
        await self.db.execute(
            "INSERT INTO user_settings (user_id, digest, digest_since, digest_last_slot, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET digest = excluded.digest, digest_since = excluded.digest_since, "
            "digest_last_slot = excluded.digest_last_slot, updated_at = excluded.updated_at",
            (user_id, digest, since, since, to_text(at)),
        )

    async def digest_done(self, user_id: str, slot: datetime, covered_until: datetime | None) -> None:
        """A digest time was handled; when a digest went out, the next one starts where it ended."""
        if covered_until is None:
            await self.db.execute(
                "UPDATE user_settings SET digest_last_slot = ? WHERE user_id = ?", (to_text(slot), user_id)
            )
        else:
            await self.db.execute(
                "UPDATE user_settings SET digest_last_slot = ?, digest_since = ? WHERE user_id = ?",
                (to_text(slot), to_text(covered_until), user_id),
            )

    async def with_digest(self) -> list[UserSettings]:
        rows = await self.db.fetchall("SELECT * FROM user_settings WHERE digest <> 'off' ORDER BY user_id")
        return [from_row(UserSettings, r) for r in rows]
