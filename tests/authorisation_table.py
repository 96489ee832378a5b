"""Who may run each command, and where: written by hand from SPEC §1/§3 and the README's command tables.

This table is the expectation the authorisation tests hold the code to. It is NOT generated from
the command registry: if a declaration in commands/ changes, the table does not follow, and
tests/unit/test_authorisation_matrix.py (and the learner cells of tests/e2e/test_trust.py) fail.

``who`` lists the people the spec names; anyone who is one of them may run the command. An
operator may run everything (SPEC §1: "register schools, name school admins, everything").
The words, as the spec and README use them:

- ``anyone``: any Matrix user (SPEC §3 "(anyone)"; README "anyone");
- ``operator``, ``school admin``, ``staff``: SPEC §1's roles;
- ``teacher``: a teacher of the class the command is about (SPEC §1 "class teacher");
- ``learner``: a learner of that class; ``member``: a teacher or a learner of it (README "member");
- longer phrases for rules that depend on the records the command names (an author of the
  programme, a teacher of both classes, …): each is a sentence of the README's tables.

``where``:

- ``any``: anywhere, also a room Ako has no record of;
- ``class``: any room of the class (class room, a work room, the staff room), or anywhere else
  naming the class by its code (SPEC §3: "A command that needs a class can be run in any of the
  class's rooms; in a DM with the bot it takes the class's code");
- ``own work room or class room``: ``!submit`` — SPEC §3 "Submissions (in the learner's work
  room)", and "a learner who runs !submit in the class room gets their message removed from there
  and recorded in their work room".

``denied`` says how a refusal shows: ``refused`` (a polite "Only … can …" / "… works in …"), or
``not found`` where the README says the thing is only visible to some (a programme outside the
library is not shown to non-staff: "anyone for a programme in the library").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    command: str
    who: tuple[str, ...]
    where: str = "any"
    denied: str = "refused"
    source: str = ""  # where in the spec or README the row comes from


ANYONE = ("anyone",)
OPERATOR = ("operator",)
SCHOOL_ADMIN = ("school admin",)
STAFF = ("staff",)
TEACHER = ("teacher",)
MEMBER = ("member",)
LEARNER = ("learner",)
AUTHOR = ("an author of the programme",)

TABLE: tuple[Row, ...] = (
    # Schools and staff (SPEC §3; README "Commands")
    Row("school add", OPERATOR, source="SPEC §3 `!school add` (operator)"),
    Row("school admin", OPERATOR, source="SPEC §3 `!school admin` (operator)"),
    Row("schools", ANYONE, source="SPEC §3 `!schools` (anyone)"),
    Row("staff add", ("a school admin of the user's server",), source="SPEC §3 `!staff add` (school admin; own server only)"),
    Row("staff remove", ("a school admin of the user's server",), source="SPEC §3 `!staff remove` (school admin; own server only)"),
    Row("staff", ANYONE, source="README `!staff` anyone"),
    Row("school block", OPERATOR, source="README `!school block` operator"),
    Row("school unblock", OPERATOR, source="README `!school unblock` operator"),
    Row("school blocked", OPERATOR, source="README `!school blocked` operator"),
    Row("export me", ANYONE, source="README `!export me` anyone"),
    Row("forget", ("school admin of the user's school",), source="README `!forget` school admin (of the user's school); operator"),
    # Classes
    Row("class new", STAFF, source="SPEC §3 `!class new` (staff)"),
    Row("join", ("anyone from a registered school who does not teach the class",),
        source="SPEC §3 `!join` (anyone); README: from a registered school; provision: a teacher cannot be a learner"),
    Row("class code", TEACHER, "class", source="SPEC §3 `!class code [reset|off]` (teacher)"),
    Row("class add", TEACHER, "class", source="SPEC §3 `!class add` (teacher)"),
    Row("class remove", TEACHER, "class", source="SPEC §3 `!class remove` (teacher)"),
    Row("class teacher add", TEACHER, "class", source="SPEC §3 `!class teacher add` (teacher)"),
    Row("roster", TEACHER, "class", source="SPEC §3 `!roster` (teacher)"),
    Row("class info", MEMBER, "class", source="README `!class info` member"),
    Row("classes", ANYONE, source="README `!classes` anyone (the caller's classes)"),
    Row("class timezone", TEACHER, "class", source="SPEC §3 `!class timezone` (teacher)"),
    Row("class archive", TEACHER, "class", source="SPEC §3 `!class archive` (teacher)"),
    Row("help", ANYONE, source="README `!help` anyone"),
    Row("confirm", ANYONE, source="README: `!assign delete` / `!forget` ask the person who ran them to `!confirm`"),
    # Assignments
    Row("assign new", TEACHER, "class", source="README `!assign new` teacher"),
    Row("assignments", MEMBER, "class", source="README `!assignments` member"),
    Row("assign show", MEMBER, "class", source="README `!assign show` member"),
    Row("assign edit due", TEACHER, "class", source="SPEC §3 `!assign edit A1 due|cutoff|points|title <value>`; README `!assign edit` teacher"),
    Row("assign edit cutoff", TEACHER, "class", source="SPEC §3 `!assign edit A1 due|cutoff|points|title <value>`; README `!assign edit` teacher"),
    Row("assign edit points", TEACHER, "class", source="SPEC §3 `!assign edit A1 due|cutoff|points|title <value>`; README `!assign edit` teacher"),
    Row("assign edit title", TEACHER, "class", source="SPEC §3 `!assign edit A1 due|cutoff|points|title <value>`; README `!assign edit` teacher"),
    Row("assign close", TEACHER, "class", source="README `!assign close` teacher"),
    Row("assign delete", TEACHER, "class", source="README `!assign delete` teacher"),
    Row("extend", TEACHER, "class", source="SPEC §3 `!extend` (teacher)"),
    Row("assign copy", ("a teacher of both classes",), "class", source="SPEC §3 `!assign copy` (teacher of both)"),
    # Submissions
    Row("submit", LEARNER, "own work room or class room", source="SPEC §3 Submissions (in the learner's work room)"),
    Row("unsubmit", LEARNER, "class", source="README `!unsubmit` learner"),
    Row("mywork", LEARNER, "class", source="README `!mywork` learner"),
    # Grading and feedback
    Row("grade", TEACHER, "class", source="README `!grade` teacher"),
    Row("return", TEACHER, "class", source="README `!return` teacher"),
    Row("submissions", TEACHER, "class", source="SPEC §3 `!submissions` (teacher)"),
    Row("grades", MEMBER, "class", source="README `!grades` member"),
    Row("export grades", ("teacher", "a school admin, for their own school's learners"), "class",
        source="SPEC §3 `!export grades` (teacher; school admins for their school's learners)"),
    Row("export calendar", MEMBER, "class", source="README `!export calendar` member"),
    # Marking (issue 17; SPEC §3 "Grading and feedback")
    Row("mark", TEACHER, "class", source="SPEC §3 `!mark A1` (teacher, privately)"),
    Row("mark stop", TEACHER, "class", source="SPEC §3 `!mark stop` ends"),
    Row("skip", TEACHER, "class", source="SPEC §3 `!skip` acts on the one shown"),
    Row("submission", MEMBER, "class", source="README `!submission` teacher; learner (her own)"),
    Row("overview", MEMBER, "class", source="SPEC §3 `!overview` (teacher); a learner's shows her own row"),
    # The staffroom and programmes (README "Sharing the learning")
    Row("staffroom", STAFF, source="README `!staffroom` staff"),
    Row("staffroom subject", STAFF, source="README `!staffroom subject` staff"),
    Row("programme new", STAFF, source="README `!programme new` staff"),
    Row("programme author add", AUTHOR, source="README `!programme author add` an author"),
    Row("programme add", AUTHOR, source="README `!programme add` an author"),
    Row("programme resource", AUTHOR, source="README `!programme resource` an author"),
    Row("programme import", ("an author of the programme who teaches that class",),
        source="README `!programme import` an author who teaches that class"),
    Row("programme move", AUTHOR, source="README `!programme move` an author"),
    Row("programme remove", AUTHOR, source="README `!programme remove` an author"),
    Row("programme show", ("staff", "anyone, for a programme in the library"), denied="not found",
        source="README `!programme show` staff; anyone for a programme in the library"),
    Row("programmes", STAFF, source="README `!programmes` staff"),
    Row("programme history", STAFF, source="README `!programme history` staff"),
    Row("programme use", ("a teacher of that class",), source="README `!programme use` a teacher of that class"),
    Row("programme publish", AUTHOR, source="README `!programme publish` an author"),
    Row("programme unpublish", AUTHOR, source="README `!programme unpublish` an author"),
    Row("library", ANYONE, source="README `!library` anyone"),
    # Forum threads
    Row("topic", MEMBER, "class", source="README `!topic` member"),
    Row("topics", MEMBER, "class", source="README `!topics` member"),
    Row("topic close", TEACHER, "class", source="SPEC §3 `!topic close|reopen|pin` (teacher)"),
    Row("topic reopen", TEACHER, "class", source="SPEC §3 `!topic close|reopen|pin` (teacher)"),
    Row("topic pin", TEACHER, "class", source="SPEC §3 `!topic close|reopen|pin` (teacher)"),
    Row("topic unpin", TEACHER, "class", source="README `!topic …|unpin` teacher"),
    Row("digest", ANYONE, source="SPEC §3 `!digest` (anyone, for themselves)"),
    # Reminders
    Row("remind", TEACHER, "class", source="SPEC §3 `!remind` (teacher, in the class room: where the notice goes)"),
    Row("remind every", TEACHER, "class", source="SPEC §3 `!remind every` (teacher)"),
    Row("remindme", ANYONE, source="SPEC §3 `!remindme` (anyone, privately)"),
    Row("reminders", ANYONE, source="README `!reminders` anyone"),
    Row("remind cancel", ("the reminder's owner, or a teacher of its class",),
        source="README `!remind cancel` owner or a teacher of its class"),
    Row("tz", ANYONE, source="README `!tz` anyone"),
)

BY_COMMAND: dict[str, Row] = {row.command: row for row in TABLE}
assert len(BY_COMMAND) == len(TABLE), "a command is in the table twice"


# The rooms a command can be sent from, as the tests name them.
ROOMS = ("class room", "own work room", "another's work room", "staff room", "own DM", "another's DM", "unknown room")


def allows(row: Row, held: set[str], room: str) -> bool:
    """Whether someone holding the ``who`` words in ``held`` may run the row's command in ``room``."""
    if row.where == "own work room or class room" and room not in ("class room", "own work room"):
        return False
    return "operator" in held or bool(set(row.who) & held)


# The words a learner of the class holds, on a registered school's server (SPEC §1 "learner").
LEARNER_HOLDS = frozenset({"anyone", "member", "learner", "anyone from a registered school who does not teach the class"})
