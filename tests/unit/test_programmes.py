"""The staffroom, programmes of learning and the library, against the recording fake."""

import json
from datetime import datetime, timezone

from commands.publishing import STATE_ASSIGNMENT
from commands.programme_record import STATE_ITEM, STATE_LIBRARY, STATE_PROGRAMME
from commands.programme_use import STATE_USE
from storage.models import to_text

from .fakes import (
    ADMIN_A, ADMIN_B, LEARNER_A, LEARNER_B, LEARNER_C, SHARED_DM, TEACHER_A, TEACHER_B, classroom, texts,
)

STRANGER = "@carl:c.test"  # a server no school is registered for


async def setup(h):
    """Schools A and B, a class PHYS12 at A (learners Ana and Ben), a class PHYSB at B."""
    c = await classroom(h)
    await h.say(TEACHER_B, SHARED_DM, '!class new "Physics B" PHYSB')
    b = await h.repos.classes.by_code("PHYSB")
    return c, b, (await h.repos.rooms.of_class(b.id, "class")).room_id


async def ask(h, sender: str, room_id: str, text: str) -> str:
    """Only the answer to the command (not the notices it sent to other rooms)."""
    return texts([m for m in await h.run(sender, room_id, text) if m.reply_to])


async def new_programme(h, title="Forces and motion") -> tuple[int, str]:
    reply = await ask(h, TEACHER_A, SHARED_DM, f'!programme new "{title}"')
    assert reply.startswith("Created **P"), reply
    p = (await h.repos.programmes.all())[-1]
    return p.id, p.room_id


def state(h, event_type, key=None):
    """The latest content written for the state event (type, key), or all of that type."""
    found = [(a[3], a[4]) for a in h.matrix.states(event_type)]
    if key is None:
        return found
    return [content for k, content in found if k == key][-1]


# --- the staffroom


async def test_named_staff_are_invited_to_the_staffroom_and_removed_staff_are_kicked(harness):
    h = harness
    await classroom(h)
    space = await h.repos.cluster_rooms.get("staffroom space")
    general = await h.repos.cluster_rooms.get("staffroom")
    creates = {a[1]: a[2] for a in h.matrix.actions if a[0] == "create"}
    assert creates[space]["space"] is True and creates[general]["parent"] == space
    assert ("child", space, general) in h.matrix.actions
    for teacher in (TEACHER_A, TEACHER_B):
        assert {space, general} <= set(h.matrix.invites_of(teacher))
    # made once, on the first !staff add; the second school's staff join the same one
    assert [c for c in creates.values() if c.get("name") == "Ako staffroom"] == [creates[space]]

    reply = await h.say(ADMIN_B, SHARED_DM, "!staff add @dana:b.test")
    assert "@dana:b.test is now staff." in reply and "I've invited @dana:b.test to the cluster's staffroom" in reply
    assert {space, general} <= set(h.matrix.invites_of("@dana:b.test"))

    await h.say("@dana:b.test", SHARED_DM, '!staffroom subject "Physics"')
    physics = (await h.repos.subjects.by_name("physics")).room_id
    reply = await h.say(ADMIN_B, SHARED_DM, "!staff remove @dana:b.test")
    assert "is no longer staff, and I've removed them from the staffroom" in reply
    kicked = {a[1] for a in h.matrix.actions if a[0] == "kick" and a[2] == "@dana:b.test"}
    assert kicked == {space, general, physics}
    assert "Only staff" in await h.say("@dana:b.test", SHARED_DM, "!staffroom")


async def test_a_failed_invite_does_not_undo_naming_staff(harness):
    h = harness
    await classroom(h)
    from commands.context import GatewayError

    async def refuse(room_id, user_id):
        raise GatewayError("403")

    h.matrix.invite = refuse
    reply = await h.say(ADMIN_A, SHARED_DM, "!staff add @eru:a.test")
    assert "@eru:a.test is now staff." in reply and "could not invite @eru:a.test to the staffroom" in reply
    assert await h.repos.staff.is_staff("@eru:a.test")


async def test_subject_rooms_let_teachers_of_different_schools_find_each_other(harness):
    h = harness
    await classroom(h)
    space = await h.repos.cluster_rooms.get("staffroom space")
    reply = await h.say(TEACHER_A, SHARED_DM, '!staffroom subject "Physics"')
    assert reply.startswith("Started the **Physics** room in the staffroom and invited you.")
    physics = await h.repos.subjects.by_name("Physics")
    create = next(a[2] for a in h.matrix.actions if a[0] == "create" and a[1] == physics.room_id)
    assert create["parent"] == space and create["invite"] == [TEACHER_A]
    assert ("child", space, physics.room_id) in h.matrix.actions

    reply = await h.say(TEACHER_B, SHARED_DM, '!staffroom subject "physics"')  # any case
    assert reply == f"I've invited you to the **Physics** room of the staffroom with {TEACHER_A}."
    assert physics.room_id in h.matrix.invites_of(TEACHER_B)
    assert "already in the **Physics** room" in await h.say(TEACHER_B, SHARED_DM, '!staffroom subject "Physics"')
    listing = await h.say(TEACHER_B, SHARED_DM, "!staffroom")
    assert "- **Physics** — 2 staff" in listing
    # learners and users of unregistered servers are not staff
    for who in (LEARNER_A, STRANGER):
        assert await h.say(who, SHARED_DM, '!staffroom subject "Physics"') == (
            "Only staff of a registered school can use !staffroom subject."
        )


# --- programmes: authoring


async def test_co_authoring_records_every_change_as_a_version_in_the_room(harness):
    h = harness
    await setup(h)
    pid, room = await new_programme(h)
    create = next(a[2] for a in h.matrix.actions if a[0] == "create" and a[1] == room)
    assert create["invite"] == [TEACHER_A] and create["history_visibility"] == "shared"
    assert "power" not in create or not create["power"]  # only Ako writes the programme's state

    reply = await ask(h, TEACHER_A, SHARED_DM, f"!programme author add P{pid} {TEACHER_B}")
    assert reply == f"**P{pid} v2** · {TEACHER_A} added {TEACHER_B} as an author"
    assert room in h.matrix.invites_of(TEACHER_B)

    out = await h.run(TEACHER_B, room, f'!programme add P{pid} "Forces lab" due week 1 fri 17:00 points 20\nMeasure *F = ma*.')
    assert texts(out) == f"**P{pid} v3** · {TEACHER_B} added I1 “Forces lab” — assignment, due week 1 fri 17:00, 20 points"
    assert [m.room_id for m in out] == [room]  # asked in the programme's room: the reply is the record
    out = await h.run(TEACHER_A, SHARED_DM, f'!programme resource P{pid} "Newton\'s laws"\nRead [this](https://example.org/newton).')
    assert {m.room_id for m in out} == {SHARED_DM, room}  # the record goes to the room as well
    await ask(h, TEACHER_B, SHARED_DM, f'!programme add P{pid} "Test" due week 2 thu 09:00 points 40 publish week 2 mon 08:00')
    await ask(h, TEACHER_A, SHARED_DM, f"!programme move P{pid} I3 to 1")

    item = state(h, STATE_ITEM, "I1")
    assert item["kind"] == "assignment" and item["title"] == "Forces lab" and item["due"] == "week 1 fri 17:00"
    assert item["description"] == "Measure *F = ma*." and item["points"] == 20 and item["programme"] == f"P{pid}"
    whole = state(h, STATE_PROGRAMME, "")
    assert whole["items"] == ["I3", "I1", "I2"] and whole["version"] == 6
    assert whole["authors"] == [TEACHER_A, TEACHER_B]
    assert all(a[1] == room for a in h.matrix.states(STATE_ITEM) + h.matrix.states(STATE_PROGRAMME))

    await ask(h, TEACHER_B, SHARED_DM, f"!programme remove P{pid} I2")
    assert state(h, STATE_ITEM, "I2") == {}
    assert state(h, STATE_PROGRAMME, "")["items"] == ["I3", "I1"]

    history = await ask(h, TEACHER_B, SHARED_DM, f"!programme history P{pid}")
    lines = [line for line in history.splitlines() if line.startswith("- v")]
    assert len(lines) == 7
    assert lines[0].startswith("- v1 · Mon 30 Nov 2026, 16:00 NZDT (Pacific/Auckland) · @teacher:a.test created “Forces and motion”")
    assert "v7" in lines[6] and f"{TEACHER_B} removed I2 “Newton's laws”" in lines[6]
    notices = [m.markdown for m in h.sent if m.room_id == room]
    assert [n.split(" · ")[0] for n in notices] == [f"**P{pid} v{n}**" for n in range(1, 8)]

    shown = await ask(h, LEARNER_A, SHARED_DM, f"!programme show P{pid}")
    assert shown == f"There is no programme P{pid} you can see; the library is empty. `!library` lists the shared ones."
    shown = await ask(h, TEACHER_B, SHARED_DM, f"!programme show P{pid}")
    assert f"**P{pid} — Forces and motion** · version 7 · by {TEACHER_A}, {TEACHER_B}" in shown
    assert "1. **I3 Test** — assignment, due week 2 thu 09:00, 40 points, posted week 2 mon 08:00" in shown
    assert "2. **I1 Forces lab**" in shown and "   > Measure *F = ma*." in shown


async def test_a_learner_cannot_create_or_edit_programmes(harness):
    h = harness
    await setup(h)
    pid, room = await new_programme(h)
    for learner in (LEARNER_A, LEARNER_B):
        assert await ask(h, learner, SHARED_DM, '!programme new "Mine"') == "Only staff of a registered school can use !programme new."
        for line in (
            f'!programme add P{pid} "Cheat" due week 1 fri 17:00',
            f'!programme resource P{pid} "Link"\nhttps://example.org',
            f"!programme remove P{pid} I1",
            f"!programme author add P{pid} {learner}",
            f"!programme publish P{pid}",
        ):
            reply = await ask(h, learner, room, line)
            assert reply.startswith("Only staff of a registered school can use !programme"), reply
    assert len(await h.repos.programmes.all()) == 1
    assert await h.repos.programmes.items(pid) == []
    assert (await h.repos.programmes.get(pid)).version == 1


async def test_an_unregistered_servers_user_cannot_author_and_staff_must_be_authors(harness):
    h = harness
    await setup(h)
    pid, _ = await new_programme(h)
    reply = await ask(h, TEACHER_A, SHARED_DM, f"!programme author add P{pid} {STRANGER}")
    assert reply.startswith(f"{STRANGER} is not staff of a registered school, so they cannot author programmes.")
    assert reply.endswith("Their school admin can name them with `!staff add`.")
    assert await ask(h, STRANGER, SHARED_DM, f'!programme add P{pid} "X" due day 1') == (
        "Only staff of a registered school can use !programme add."
    )
    # an admin of A cannot make C's user staff either
    assert "not on your school's server" in await ask(h, ADMIN_A, SHARED_DM, f"!staff add {STRANGER}")
    # staff who are not authors may read and use a programme, not change it
    reply = await ask(h, TEACHER_B, SHARED_DM, f'!programme add P{pid} "X" due day 1')
    assert reply.startswith(f"Only an author of P{pid} — Forces and motion can change it (authors: {TEACHER_A}).")
    assert await h.repos.programmes.authors(pid) == [TEACHER_A]
    assert "Forces and motion" in await ask(h, TEACHER_B, SHARED_DM, f"!programme show P{pid}")


async def test_bad_offsets_and_ids_are_named(harness):
    h = harness
    await setup(h)
    pid, _ = await new_programme(h)
    reply = await ask(h, TEACHER_A, SHARED_DM, f'!programme add P{pid} "Lab" due next friday')
    assert "“next friday” is not a time in the programme" in reply and "Usage: `!programme add [<programme>]" in reply
    reply = await ask(h, TEACHER_A, SHARED_DM, f'!programme add P{pid} "Lab" due week 1 fri 17:00 publish week 2 mon 08:00')
    assert "It must be posted (week 2 mon 08:00) before it is due (week 1 fri 17:00)." in reply
    assert f"There is no programme P99; there is P{pid}." in await ask(h, TEACHER_A, SHARED_DM, '!programme add P99 "Lab" due day 1')
    assert "is not a programme id" in await ask(h, TEACHER_A, SHARED_DM, '!programme show 7')
    assert "has no item I4" in await ask(h, TEACHER_A, SHARED_DM, f"!programme remove P{pid} I4")


async def test_a_programme_holds_a_bounded_number_of_items(harness, monkeypatch):
    import commands.programme_refs as programmes

    h = harness
    await setup(h)
    pid, _ = await new_programme(h)
    monkeypatch.setattr(programmes, "MAX_ITEMS", 2)
    for n in (1, 2):
        assert f"added I{n}" in await ask(h, TEACHER_A, SHARED_DM, f'!programme add P{pid} "Lab {n}" due day {n}')
    reply = await ask(h, TEACHER_A, SHARED_DM, f'!programme resource P{pid} "More"\ntext')
    assert reply == f"P{pid} — Forces and motion has 2 items, the most a programme holds; split it into two programmes."


async def test_import_turns_a_class_assignment_into_an_item(harness):
    h = harness
    c, b, _ = await setup(h)
    pid, _ = await new_programme(h)
    # set on Mon 30 Nov 2026, due Friday of the next week at 17:00 in the class's zone
    await ask(h, TEACHER_A, c.class_room, '!assign new "River study" due 2026-12-11 17:00 points 30\nWalk the *Waikato*.')
    reply = await ask(h, TEACHER_A, SHARED_DM, f"!programme import P{pid} A1 from PHYS12")
    assert reply == (
        f"**P{pid} v2** · {TEACHER_A} imported A1 of PHYS12 as I1 “River study” — assignment, due week 2 fri 17:00, 30 points"
    )
    item = state(h, STATE_ITEM, "I1")
    assert item["description"] == "Walk the *Waikato*." and item["source"] == "PHYS12 A1"
    # only a teacher of that class may bring its work in
    await ask(h, TEACHER_A, SHARED_DM, f"!programme author add P{pid} {TEACHER_B}")
    assert await ask(h, TEACHER_B, SHARED_DM, f"!programme import P{pid} A1 from PHYS12") == (
        "Only a teacher of Physics 12 can bring its assignments into a programme."
    )


# --- programmes: use in a class


async def authored(h) -> tuple[int, str]:
    pid, room = await new_programme(h)
    await ask(h, TEACHER_A, SHARED_DM, f"!programme author add P{pid} {TEACHER_B}")
    await ask(h, TEACHER_A, SHARED_DM, f'!programme add P{pid} "Forces lab" due week 1 fri 17:00 points 20\nMeasure it.')
    await ask(h, TEACHER_B, SHARED_DM, f'!programme resource P{pid} "Reading"\nSee https://example.org/forces')
    await ask(h, TEACHER_B, SHARED_DM, f'!programme add P{pid} "Motion test" due week 2 fri 17:00 points 40')
    return pid, room


async def test_use_in_a_class_gives_due_dates_on_the_class_clock_across_dst(harness):
    h = harness
    c, b, b_room = await setup(h)
    pid, room = await authored(h)
    # New Zealand summer time ends Sun 4 Apr 2027 (NZDT +13 → NZST +12): week 1 is before, week 2 after
    out = await h.run(TEACHER_B, SHARED_DM, f"!programme use P{pid} PHYSB start 2027-03-29")
    reply = texts([m for m in out if m.room_id == SHARED_DM])
    assert reply.startswith(f"Put **P{pid} — Forces and motion** (version 5) into Physics B (PHYSB), starting Mon 29 Mar 2027")
    assert "- **A1 — Forces lab** (I1) · due Fri 2 Apr 2027, 17:00 NZDT (Pacific/Auckland) · 20 points · posted" in reply
    assert "- **A2 — Motion test** (I3) · due Fri 9 Apr 2027, 17:00 NZST (Pacific/Auckland) · 40 points · posted" in reply
    a1, a2 = await h.repos.assignments.of_class(b.id)
    assert a1.due_at.astimezone(timezone.utc) == datetime(2027, 4, 2, 4, 0, tzinfo=timezone.utc)
    assert a2.due_at.astimezone(timezone.utc) == datetime(2027, 4, 9, 5, 0, tzinfo=timezone.utc)
    assert a1.description == "Measure it." and a1.points == 20 and a1.published
    # posted like !assign new: the class room's state events and announcements
    written = {a[3]: a[4] for a in h.matrix.states(STATE_ASSIGNMENT) if a[1] == b_room}
    assert written["A1"]["due"] == to_text(a1.due_at) and written["A2"]["title"] == "Motion test"
    posts = texts(out, b_room)
    assert "**A1 — Forces lab** · 20 points" in posts and "**Resource — Reading**" in posts
    # the class records which programme and version it came from
    use = await h.repos.programmes.use_in(pid, b.id)
    assert use.version == 5 and use.start.isoformat() == "2027-03-29" and use.timezone == "Pacific/Auckland"
    assert await h.repos.programmes.use_items(use.id) == {1: a1.id, 2: None, 3: a2.id}
    record = state(h, STATE_USE, f"P{pid}")
    assert record["version"] == 5 and record["items"] == {"I1": "A1", "I2": None, "I3": "A2"}
    assert "put version 5 into Physics B (PHYSB)" in texts(out, room)
    assert "Used in Physics B (PHYSB) from Mon 29 Mar 2027 (version 5)." in await ask(h, TEACHER_A, SHARED_DM, f"!programme show P{pid}")
    assert "is already in Physics B (PHYSB)" in await ask(h, TEACHER_B, SHARED_DM, f"!programme use P{pid} PHYSB start 2027-04-05")


async def test_use_follows_the_class_zone_and_publish_offsets(harness):
    h = harness
    c, b, b_room = await setup(h)
    pid, _ = await new_programme(h)
    await ask(h, TEACHER_A, SHARED_DM, f'!programme add P{pid} "Quiz" due week 2 fri 17:00 publish week 2 mon 08:00')
    await ask(h, TEACHER_A, c.class_room, "!class timezone Europe/London")
    out = await h.run(TEACHER_A, SHARED_DM, f"!programme use P{pid} PHYS12 start 2026-12-07")
    reply = texts([m for m in out if m.room_id == SHARED_DM])
    assert "· due Fri 18 Dec 2026, 17:00 GMT (Europe/London) · 100 points · to be posted Mon 14 Dec 2026, 08:00 GMT" in reply
    (a,) = await h.repos.assignments.of_class(c.klass.id)
    assert not a.published and a.publish_at == datetime(2026, 12, 14, 8, 0, tzinfo=timezone.utc)


async def test_use_needs_a_teacher_of_the_class_and_a_future_start(harness):
    h = harness
    c, b, _ = await setup(h)
    pid, _ = await authored(h)
    assert await ask(h, TEACHER_A, SHARED_DM, f"!programme use P{pid} PHYSB start 2027-03-29") == (
        "Only a teacher of Physics B can put a programme into it."
    )
    assert await ask(h, LEARNER_B, SHARED_DM, f"!programme use P{pid} PHYSB start 2027-03-29") == (
        "Only staff of a registered school can use !programme use."
    )
    reply = await ask(h, TEACHER_B, SHARED_DM, f"!programme use P{pid} PHYSB start 2026-11-16")
    assert reply.startswith("Starting Mon 16 Nov 2026, these would be due in the past or before the start: I1 (week 1 fri 17:00 →")
    reply = await ask(h, TEACHER_B, SHARED_DM, f"!programme use P{pid} PHYSB start 9999-12-31")
    assert "is more than a year from today" in reply and "Usage: `!programme use" in reply
    assert await h.repos.assignments.of_class(b.id) == []
    assert await h.repos.programmes.use_in(pid, b.id) is None


# --- the library


async def test_publish_lists_materials_in_a_world_readable_library_and_no_learner_data(harness):
    h = harness
    c, b, _ = await setup(h)
    pid, _ = await authored(h)
    await ask(h, TEACHER_A, SHARED_DM, f"!programme use P{pid} PHYS12 start 2026-12-07")
    # learners' work and grades exist, in their work rooms
    assert "Received **A1 — Forces lab**" in await ask(h, LEARNER_A, c.work[LEARNER_A], "!submit A1 my essay")
    assert "17/20" in await ask(h, TEACHER_A, c.work[LEARNER_A], "!grade A1 17/20 Good work")
    assert "The library is empty." in await ask(h, LEARNER_C, SHARED_DM, "!library")

    out = await h.run(TEACHER_B, SHARED_DM, f"!programme publish P{pid}")
    assert f"**P{pid} v6** · {TEACHER_B} listed it in the library" in texts(out)
    assert "It is in the library room #ako-library:a.test: anyone can read it there" in texts(out)
    library = await h.repos.cluster_rooms.get("library")
    create = next(a[2] for a in h.matrix.actions if a[0] == "create" and a[1] == library)
    assert create["history_visibility"] == "world_readable" and create["join_rule"] == "public"
    assert create["directory"] is True and create["alias"] == "ako-library" and create["events_default"] == 50
    entry = state(h, STATE_LIBRARY, f"P{pid}")
    assert [i["title"] for i in entry["items"]] == ["Forces lab", "Reading", "Motion test"]
    post = texts(out, library)
    assert "**P1 — Forces and motion** · version 6" in post and "Measure it." in post
    everything = post + json.dumps([a for a in h.matrix.actions if a[1] == library], ensure_ascii=False)
    for learner in (LEARNER_A, LEARNER_B, "ana", "ben", "my essay", "17/20", "Good work", "PHYSB", "PHYS12"):
        assert learner not in everything

    # anyone may list and read what is in the library
    listing = await ask(h, LEARNER_C, SHARED_DM, "!library")
    assert f"- **P{pid} — Forces and motion** · v6 · 3 items · by {TEACHER_A}, {TEACHER_B}" in listing
    assert "#ako-library:a.test" in listing
    assert "Forces lab" in await ask(h, LEARNER_A, SHARED_DM, f"!programme show P{pid}")
    # a change follows into the library's entry
    await ask(h, TEACHER_A, SHARED_DM, f"!programme remove P{pid} I2")
    assert [i["id"] for i in state(h, STATE_LIBRARY, f"P{pid}")["items"]] == ["I1", "I3"]

    out = await h.run(TEACHER_A, SHARED_DM, f"!programme unpublish P{pid}")
    assert state(h, STATE_LIBRARY, f"P{pid}") == {}
    assert "taken out of the library" in texts(out, library)
    assert "The library is empty." in await ask(h, LEARNER_C, SHARED_DM, "!library")
    # a second publish reuses the same library room
    await ask(h, TEACHER_A, SHARED_DM, f"!programme publish P{pid}")
    assert len([a for a in h.matrix.actions if a[0] == "create" and a[2].get("name") == "Ako library"]) == 1
