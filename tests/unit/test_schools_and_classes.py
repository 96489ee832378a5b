"""Handlers against the recording fake, a real database and a frozen clock."""

from .fakes import OPERATOR

A, B, C = "a.test", "b.test", "c.test"
DM = "!dm:a.test"
ADMIN_A, ADMIN_B = "@admin:a.test", "@admin:b.test"
TEACHER_A, TEACHER_B = "@teacher:a.test", "@teacher:b.test"
LEARNER_A, LEARNER_B, LEARNER_C = "@ana:a.test", "@ben:b.test", "@cat:c.test"


async def cluster(h):
    await h.repos.rooms.add(DM, "dm", None, None, h.clock.now())
    assert "Registered" in await h.say(OPERATOR, DM, '!school add a.test "Kura A"')
    await h.say(OPERATOR, DM, '!school add b.test "Kura B"')
    await h.say(OPERATOR, DM, f"!school admin a.test {ADMIN_A}")
    await h.say(OPERATOR, DM, f"!school admin b.test {ADMIN_B}")
    await h.say(ADMIN_A, DM, f"!staff add {TEACHER_A}")
    await h.say(ADMIN_B, DM, f"!staff add {TEACHER_B}")


async def new_class(h):
    reply = await h.say(TEACHER_A, DM, '!class new "Physics 12" PHYS12')
    assert "PHYS12" in reply
    klass = await h.repos.classes.by_code("PHYS12")
    return klass, (await h.repos.rooms.of_class(klass.id, "class")).room_id


async def test_only_operators_register_schools(harness):
    h = harness
    reply = await h.say("@someone:a.test", DM, '!school add a.test "Kura A"')
    assert reply == "Only an operator of this Ako can use !school add."
    assert await h.repos.schools.all() == []


async def test_school_admin_names_staff_on_own_server_only(harness):
    h = harness
    await cluster(h)
    reply = await h.say(ADMIN_A, DM, f"!staff add {LEARNER_B}")
    assert "not on your school's server" in reply
    assert not await h.repos.staff.is_staff(LEARNER_B)
    assert "is now staff" in await h.say(ADMIN_A, DM, "!staff add @second:a.test")


async def test_admin_must_be_on_the_schools_server(harness):
    h = harness
    await cluster(h)
    reply = await h.say(OPERATOR, DM, f"!school admin a.test {ADMIN_B}")
    assert "not on a.test" in reply


async def test_class_new_creates_space_class_and_staff_rooms(harness):
    h = harness
    await cluster(h)
    h.matrix.actions.clear()  # the staffroom, made at !staff add, is not the class's
    klass, class_room = await new_class(h)
    kinds = {r.kind for r in await h.repos.rooms.all_of_class(klass.id)}
    assert kinds == {"space", "class", "staff"}
    creates = [a for a in h.matrix.actions if a[0] == "create"]
    assert all(a[2]["power"] == {TEACHER_A: 50} for a in creates)
    assert await h.repos.classes.role_of(klass.id, TEACHER_A) == "teacher"


async def test_learner_joins_by_code_and_gets_a_private_work_room(harness):
    h = harness
    await cluster(h)
    klass, class_room = await new_class(h)
    reply = await h.say(LEARNER_B, "!dm-b:b.test", "!join phys12")
    assert "Welcome to **Physics 12**" in reply
    work = await h.repos.rooms.work_room(klass.id, LEARNER_B)
    assert work is not None
    create = next(a for a in h.matrix.actions if a[0] == "create" and a[1] == work.room_id)[2]
    assert create["history_visibility"] == "joined" and create["join_rule"] == "invite"
    assert set(create["invite"]) == {LEARNER_B, TEACHER_A}
    assert class_room in h.matrix.invites_of(LEARNER_B)
    again = await h.say(LEARNER_B, "!dm-b:b.test", "!join PHYS12")
    assert "already in" in again
    assert len([r for r in await h.repos.rooms.all_of_class(klass.id) if r.kind == "work"]) == 1


async def test_unregistered_server_cannot_join_or_teach(harness):
    h = harness
    await cluster(h)
    klass, class_room = await new_class(h)
    assert "not the server of a school" in await h.say(LEARNER_C, "!dm-c:c.test", "!join PHYS12")
    assert await h.repos.classes.role_of(klass.id, LEARNER_C) is None
    assert "Only a teacher of Physics 12" in await h.say(LEARNER_C, class_room, "!roster")


async def test_roster_groups_by_school(harness):
    h = harness
    await cluster(h)
    klass, class_room = await new_class(h)
    await h.say(LEARNER_A, DM, "!join PHYS12")
    await h.say(LEARNER_B, DM, "!join PHYS12")
    roster = await h.say(TEACHER_A, class_room, "!roster")
    assert roster.index("Kura A") < roster.index(LEARNER_A) < roster.index("Kura B") < roster.index(LEARNER_B)
    assert "Only a teacher" in await h.say(LEARNER_A, class_room, "!roster")


async def test_class_commands_in_a_dm_take_the_code(harness):
    h = harness
    await cluster(h)
    await new_class(h)
    assert "Roster of Physics 12" in await h.say(TEACHER_A, DM, "!roster PHYS12")
    assert "name the class by its code" in await h.say(TEACHER_A, DM, "!roster")
    assert "No class has the code NOPE" in await h.say(TEACHER_A, DM, "!roster NOPE")


async def test_bad_input_gets_problem_and_usage(harness):
    h = harness
    await cluster(h)
    reply = await h.say(TEACHER_A, DM, "!class new")
    assert "needs" in reply and 'Usage: `!class new "<class name>" [<class code>]`' in reply
    assert "I don't know the command !frobnicate" in await h.say(TEACHER_A, DM, "!frobnicate")


async def test_teacher_from_another_school_and_archive(harness):
    h = harness
    await cluster(h)
    klass, class_room = await new_class(h)
    await h.say(LEARNER_B, DM, "!join PHYS12")
    assert "now teaches" in await h.say(TEACHER_A, class_room, f"!class teacher add {TEACHER_B}")
    work = await h.repos.rooms.work_room(klass.id, LEARNER_B)
    assert work.room_id in h.matrix.invites_of(TEACHER_B)
    assert ("power", work.room_id, TEACHER_B, 50) in h.matrix.actions
    assert "is archived" in await h.say(TEACHER_B, class_room, "!class archive")
    assert "archived" in await h.say(TEACHER_A, class_room, "!class timezone Europe/London")
    assert "Roster" in await h.say(TEACHER_A, class_room, "!roster")


async def test_replayed_event_is_not_acted_on_twice(harness):
    from commands.dispatch import CommandEvent, Outcome

    h = harness
    await cluster(h)
    h.matrix.actions.clear()  # the staffroom, made at !staff add, is not the class's
    ev = CommandEvent(TEACHER_A, DM, "$same", 'class new "Chem" CHEM1')
    assert await h.dispatcher.handle(ev) is Outcome.DONE
    assert await h.dispatcher.handle(ev) is Outcome.ALREADY_HANDLED
    assert len([a for a in h.matrix.actions if a[0] == "create"]) == 3


async def test_a_bug_is_logged_with_a_reference_and_nothing_is_kept(harness, caplog):
    h = harness
    await cluster(h)

    async def boom(**kwargs):
        raise KeyError("internal detail")

    h.matrix.create_room = boom
    reply = await h.say(TEACHER_A, DM, '!class new "Chem" CHEM1')
    assert reply.startswith("Something went wrong (ref ") and "internal detail" not in reply
    assert await h.repos.classes.by_code("CHEM1") is None
    assert "internal detail" in caplog.text


async def test_help_lists_what_the_caller_may_use(harness):
    h = harness
    await cluster(h)
    learner_help = await h.say(LEARNER_A, DM, "!help")
    assert "!join" in learner_help and "!school add" not in learner_help
    assert "!school add" in await h.say(OPERATOR, DM, "!help")
    detail = await h.say(LEARNER_A, DM, "!help class new")
    assert '!class new "<class name>"' in detail and "Who: staff" in detail


async def test_power_level_drift_is_restored(harness):
    h = harness
    await cluster(h)
    klass, class_room = await new_class(h)
    await h.say(LEARNER_A, DM, "!join PHYS12")
    drifted = {"users": {TEACHER_A: 100, LEARNER_A: 50, "@stranger:c.test": 100}, "events_default": 0}
    changed = await h.dispatcher.power_changed("@someone:a.test", class_room, drifted)
    assert set(changed) == {TEACHER_A, LEARNER_A, "@stranger:c.test"}
    restored = [a for a in h.matrix.actions if a[0] == "state" and a[2] == "m.room.power_levels"][-1][4]
    assert restored["users"] == {TEACHER_A: 50} and restored["events_default"] == 0
    assert await h.dispatcher.power_changed("@someone:a.test", class_room, restored) == []


async def test_what_the_records_say_of_a_person_is_read_in_one_query(harness):
    """storage/people.py: every command's caller, in one statement, as SPEC §1's records say."""
    from storage.models import ClassRole, School

    from .fakes import StatementCounter

    h, now = harness, harness.clock.now()
    await h.repos.schools.add(A, "Kura A", OPERATOR, now)
    await h.repos.schools.add(B, "Kura B", OPERATOR, now)
    for admin in ("@zed:a.test", ADMIN_A):
        await h.repos.schools.add_admin(A, admin, OPERATOR, now)
    await h.repos.schools.add_admin(B, ADMIN_A, OPERATOR, now)  # an admin of two schools
    await h.repos.staff.add(TEACHER_A, A, ADMIN_A, now)
    physics = await h.repos.classes.create("Physics", "PHYS", "Pacific/Auckland", A, TEACHER_A, now)
    chemistry = await h.repos.classes.create("Chemistry", "CHEM", "Pacific/Auckland", A, TEACHER_A, now)
    await h.repos.classes.add_member(physics.id, TEACHER_A, ClassRole.TEACHER, TEACHER_A, now)
    await h.repos.classes.add_member(physics.id, LEARNER_A, ClassRole.LEARNER, TEACHER_A, now)
    await h.repos.blocked.add(C, OPERATOR, now)

    with StatementCounter(h.db) as counted:
        admin = await h.repos.people.get(ADMIN_A)
    assert len(counted.statements) == 1
    assert (admin.admin_of, admin.staff, admin.blocked, admin.classes) == (frozenset({A, B}), False, False, {})
    assert admin.school == School(A, "Kura A", ("@admin:a.test", "@zed:a.test"))

    teacher = await h.repos.people.get(TEACHER_A)
    assert (teacher.admin_of, teacher.staff) == (frozenset(), True)
    assert teacher.role_in(physics.id) == ClassRole.TEACHER
    learner = await h.repos.people.get(LEARNER_A)
    assert (learner.staff, learner.school.server, learner.classes) == (False, A, {physics.id: ClassRole.LEARNER})
    assert learner.role_in(None) is None and learner.role_in(chemistry.id) is None

    stranger = await h.repos.people.get(LEARNER_C)
    assert (stranger.school, stranger.blocked, stranger.staff, stranger.admin_of) == (None, True, False, frozenset())
    assert (await h.repos.people.get(LEARNER_B)).school == School(B, "Kura B", (ADMIN_A,))
