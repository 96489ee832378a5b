"""What the records say of one person, read in one query: the schools they administer, whether
they are staff, their server's school and whether that server is blocked, their role in each class.
Every command's caller is checked against it (commands/dispatch.py), so it is one trip to SQLite."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .db import Repository
from .models import ClassRole, School, server_of

# ?1 the person, ?2 their server
_PERSON = """
SELECT
    (SELECT json_group_array(server) FROM school_admins WHERE user_id = ?1) AS admin_of,
    EXISTS (SELECT 1 FROM staff WHERE user_id = ?1) AS staff,
    (SELECT name FROM schools WHERE server = ?2) AS school,
    (SELECT json_group_array(user_id) FROM school_admins WHERE server = ?2) AS school_admins,
    EXISTS (SELECT 1 FROM blocked_servers WHERE server = ?2) AS blocked,
    (SELECT json_group_object(class_id, role) FROM class_members WHERE user_id = ?1) AS classes
"""


@dataclass(frozen=True)
class Person:
    user_id: str
    admin_of: frozenset[str]  # servers whose school admin they are
    staff: bool
    school: School | None  # the registered school of their server
    blocked: bool  # their server is blocked (`!school block`)
    classes: dict[int, ClassRole] = field(default_factory=dict)  # class id → their role there

    def role_in(self, class_id: int | None) -> ClassRole | None:
        return None if class_id is None else self.classes.get(class_id)


class People(Repository):
    async def get(self, user_id: str) -> Person:
        server = server_of(user_id)
        row = await self.db.fetchone(_PERSON, (user_id, server))
        school = None
        if row["school"] is not None:
            school = School(server, row["school"], tuple(sorted(json.loads(row["school_admins"]))))
        return Person(
            user_id=user_id,
            admin_of=frozenset(json.loads(row["admin_of"])),
            staff=bool(row["staff"]),
            school=school,
            blocked=bool(row["blocked"]),
            classes={int(k): ClassRole(v) for k, v in json.loads(row["classes"]).items()},
        )
