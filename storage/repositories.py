"""All repositories over one database, built once and passed to the handlers."""

from __future__ import annotations

from dataclasses import dataclass

from .blocking import BlockedServers
from .classes import Classes, Rooms
from .confirmations import Confirmations
from .coursework import Assignments, Extensions, Grades, Returns, Submissions
from .db import Database
from .forum import Topics
from .marking import MarkingSessions
from .outbox import Outbox
from .people import People
from .privacy import PersonalData
from .programmes import ClusterRooms, Programmes, Subjects
from .reminders import Calendar, Ledger, Reminders
from .schools import Schools, Staff
from .sync import SyncState
from .users import Users


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
    topics: Topics
    reminders: Reminders
    ledger: Ledger
    calendar: Calendar
    users: Users
    cluster_rooms: ClusterRooms
    subjects: Subjects
    programmes: Programmes
    blocked: BlockedServers
    personal: PersonalData
    marking: MarkingSessions
    people: People

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
            topics=Topics(db),
            reminders=Reminders(db),
            ledger=Ledger(db),
            calendar=Calendar(db),
            users=Users(db),
            cluster_rooms=ClusterRooms(db),
            subjects=Subjects(db),
            programmes=Programmes(db),
            blocked=BlockedServers(db),
            personal=PersonalData(db),
            marking=MarkingSessions(db),
            people=People(db),
        )
