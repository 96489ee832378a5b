"""All repositories over one database, built once and passed to the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from .classes import Classes, Rooms
from .db import Database
from .outbox import Outbox
from .schools import Schools, Staff
from .sync import SyncState


@dataclass
class Repositories:
    db: Database
    schools: Schools
    staff: Staff
    classes: Classes
    rooms: Rooms
    sync: SyncState
    outbox: Outbox

    @classmethod
    def over(cls, db: Database) -> "Repositories":
        return cls(db, Schools(db), Staff(db), Classes(db), Rooms(db), SyncState(db), Outbox(db))
