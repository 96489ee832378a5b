"""Every "not found" says what exists; the rooms follow the records (power, topic, nz.ako.class);
programme commands in a programme's own room need no id."""

from .fakes import LEARNER_A, SHARED_DM, TEACHER_A, TEACHER_B, classroom, texts

DUE = "2026-12-04 17:00"


async def test_not_found_names_what_exists(harness):
    h = harness
    c = await classroom(h)
    for title in ("One", "Two", "Three"):
        await h.run(TEACHER_A, c.class_room, f'!assign new "{title}" due {DUE}')
    reply = await h.say(TEACHER_A, c.class_room, "!assign show A9")
    assert "Physics 12 has no assignment A9; its assignments are A1–A3. `!assignments` lists them." in reply
    await h.run(TEACHER_A, c.class_room, '!topic "Welcome"\nHello.')
    assert "Physics 12 has no topic T4; its topics are T1." in await h.say(TEACHER_A, c.class_room, "!topic close T4")
    reply = await h.say(TEACHER_A, SHARED_DM, "!roster PHYS13")
    assert "No class has the code PHYS13; yours: Physics 12 (PHYS12)." in reply
    assert "you are in no class yet" in await h.say("@zed:a.test", SHARED_DM, "!roster PHYS13")
    await h.run(TEACHER_A, c.class_room, "!remind friday 9am Bring calculators")
    assert "There is no reminder R7 of yours; yours are R1." in await h.say(TEACHER_A, c.class_room, "!remind cancel R7")
    reply = await h.say(LEARNER_A, c.work[LEARNER_A], "!assign show A9")
    assert "its assignments are A1–A3" in reply


async def test_removing_a_teacher_lowers_their_power_in_every_room(harness):
    h = harness
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, f"!class teacher add {TEACHER_B}")
    rooms = {r.room_id for r in await h.repos.rooms.all_of_class(c.klass.id)}
    h.matrix.actions.clear()
    await h.run(TEACHER_A, c.class_room, f"!class remove {TEACHER_B}")
    lowered = {a[1] for a in h.matrix.actions if a[0] == "power" and a[2] == TEACHER_B and a[3] == 0}
    assert lowered == rooms and len(rooms) >= 5  # space, class room, staff room, two work rooms
    first = {a[1]: i for i, a in reversed(list(enumerate(h.matrix.actions))) if a[0] == "power"}
    kicked = {a[1]: i for i, a in enumerate(h.matrix.actions) if a[0] == "kick"}
    assert all(first[r] < kicked[r] for r in rooms)  # lowered while Ako can still see them there


async def test_class_code_and_zone_changes_reach_the_class_room(harness):
    h = harness
    c = await classroom(h)
    await h.run(TEACHER_A, c.class_room, "!class code reset")
    code = (await h.repos.classes.get(c.klass.id)).code
    record = h.matrix.states("nz.ako.class")[-1]
    assert record[1] == c.class_room and record[4]["code"] == code and record[4]["code_enabled"] is True
    topic = h.matrix.states("m.room.topic")[-1]
    assert topic[1] == c.class_room and f"Class code {code}." in topic[4]["topic"] and "PHYS12" not in topic[4]["topic"]
    await h.run(TEACHER_A, c.class_room, "!class code off")
    assert h.matrix.states("nz.ako.class")[-1][4]["code_enabled"] is False
    assert "Joining by code is off." in h.matrix.states("m.room.topic")[-1][4]["topic"]
    await h.run(TEACHER_A, c.class_room, "!class timezone Europe/London")
    assert h.matrix.states("nz.ako.class")[-1][4]["timezone"] == "Europe/London"


async def test_programme_commands_in_the_programmes_room_need_no_id(harness):
    h = harness
    await classroom(h)
    await h.run(TEACHER_A, SHARED_DM, '!programme new "Forces"')
    p = (await h.repos.programmes.all())[-1]
    out = await h.run(TEACHER_A, p.room_id, f"!programme author add {TEACHER_B}")
    assert texts(out) == f"**P{p.id} v2** · {TEACHER_A} added {TEACHER_B} as an author"
    out = await h.run(TEACHER_B, p.room_id, '!programme add "Lab" due week 1 fri 17:00 points 20')
    assert f"**P{p.id} v3** · {TEACHER_B} added I1 “Lab”" in texts(out)
    assert f"**P{p.id} — Forces** · version 3" in await h.say(TEACHER_B, p.room_id, "!programme show")
    assert f"P{p.id} — Forces has no item I5; its items are I1." in await h.say(TEACHER_B, p.room_id, "!programme remove I5")
    reply = await h.say(TEACHER_B, SHARED_DM, '!programme add "Lab" due week 1 fri 17:00')
    assert "Name the programme (`!programme add P1 …`), or run it in the programme's own room." in reply
