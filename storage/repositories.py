"""All repositories over one database, built once and passed to the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from .classes import Classes, Rooms
from .coursework import Assignments, Confirmations, Extensions, Grades, Returns, Submissions
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
    assignments: Assignments
    extensions: Extensions
    submissions: Submissions
    grades: Grades
    returns: Returns
    confirmations: Confirmations

    @classmethod
    def over(cls, db: Database) -> "Repositories":
        return cls(
            db, Schools(db), Staff(db), Classes(db), Rooms(db), SyncState(db), Outbox(db),
            assignments=Assignments(db),
            extensions=Extensions(db),
            submissions=Submissions(db),
            grades=Grades(db),
            returns=Returns(db),
            confirmations=Confirmations(db),
        )
