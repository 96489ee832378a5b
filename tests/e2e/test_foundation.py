"""Issue 2 end to end: the bot as a process, three real Synapse servers, real federation."""

from __future__ import annotations

import asyncio

from tests.matrix_user import MatrixError

from .helpers import join_invite, open_dm


def replies_to(user, room_id, event_id):
    return [n for n in user.notices(room_id) if (n.get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == event_id]


async def test_help_unknown_and_malformed_in_a_dm(cluster, new_user, hs_b):
    learner = await new_user(hs_b, "helpme")
    dm = await open_dm(learner, cluster.bot_id)
    reply = await learner.command(dm, "!help")
    assert reply["msgtype"] == "m.notice" and "!join" in reply["body"] and "!school add" not in reply["body"]
    assert "<code>" in reply["formatted_body"]
    reply = await learner.command(dm, "!frobnicate")
    assert "I don't know the command !frobnicate" in reply["body"]
    reply = await learner.command(dm, "!join")
    assert "join needs <class code>" in reply["body"] and "Usage: `!join <class code>`" in reply["body"]
    reply = await learner.command(dm, "!class new \"Unclosed")
    assert "never closed" in reply["body"]


async def test_school_admin_cannot_name_staff_of_another_school(cluster, new_user, hs_b):
    outsider = await new_user(hs_b, "notstaff")
    dm = await open_dm(cluster.admin_a, cluster.bot_id)
    reply = await cluster.admin_a.command(dm, f"!staff add {outsider.user_id}")
    assert "not on your school's server" in reply["body"]
    listing = await cluster.admin_a.command(dm, "!staff")
    assert outsider.user_id not in listing["body"] and cluster.teacher_b.user_id in listing["body"]


async def test_class_across_schools(cluster, new_user, hs_a, hs_b, hs_c):
    teacher = cluster.teacher_a
    tdm = await open_dm(teacher, cluster.bot_id)
    reply = await teacher.command(tdm, '!class new "Physics 12" PHYS12')
    assert "PHYS12" in reply["body"]
    # The teacher is invited to the space, the class room and the staff room (and, as staff, has
    # pending invitations to the cluster's staffroom: those are left alone here).
    def physics(invite: dict) -> bool:
        names = [(e.get("content") or {}).get("name") or "" for e in invite["state"] if e.get("type") == "m.room.name"]
        return any(n.startswith("Physics 12") for n in names)

    class_room = None
    for _ in range(3):
        room = await teacher.wait_invite(physics, timeout=30)
        await teacher.join(room)
        state = await teacher.client.room_get_state(room)
        names = {e.get("content", {}).get("name") for e in state.events if e["type"] == "m.room.name"}
        if any(e["type"] == "nz.ako.class" for e in state.events):
            class_room = room
            pl = next(e for e in state.events if e["type"] == "m.room.power_levels")["content"]
            assert pl["users"].get(teacher.user_id) == 50
            assert cluster.bot_id not in pl["users"]  # room v12: the creator's power is implicit
    assert class_room is not None

    # A learner on B joins by code over federation.
    ben = await new_user(hs_b, "ben")
    bdm = await open_dm(ben, cluster.bot_id)
    reply = await ben.command(bdm, "!join PHYS12")
    assert "Welcome to **Physics 12**" in reply["body"]
    invites = {await ben.wait_invite(timeout=30), await ben.wait_invite(timeout=30), await ben.wait_invite(timeout=30)}
    for room in invites:
        await ben.join(room)
    assert class_room in invites
    work_room = None
    for r in invites:
        state = (await ben.client.room_get_state(r)).events
        if any(e["type"] == "m.room.history_visibility" and e["content"]["history_visibility"] == "joined" for e in state):
            work_room = r
    assert work_room is not None

    # Another learner, on A, joins too; they cannot read Ben's work room.
    ana = await new_user(hs_a, "ana")
    adm = await open_dm(ana, cluster.bot_id)
    assert "Welcome" in (await ana.command(adm, "!join phys12"))["body"]
    try:
        await ana.messages(work_room)
        raise AssertionError("a learner read another learner's work room")
    except MatrixError as e:
        assert e.errcode == "M_FORBIDDEN"
    resp = await ana.client.join(work_room)
    assert getattr(resp, "status_code", None) == "M_FORBIDDEN"

    # The roster lists both schools.
    roster = (await teacher.command(class_room, "!roster"))["body"]
    assert "Kura A" in roster and "Kura B" in roster and ben.user_id in roster and ana.user_id in roster

    # A user on C gains nothing: the bot declines their DM, and in a room where the bot is,
    # they can neither join by code nor run a teacher command.
    carl = await new_user(hs_c, "carl")
    cdm = await carl.dm(cluster.bot_id)
    await carl.wait_for(cdm, lambda e: e["type"] == "m.room.member" and e["state_key"] == cluster.bot_id
                        and e["content"]["membership"] == "leave", since=0, timeout=30)
    group = await teacher.client.room_create(name="Mixed room", invite=[cluster.bot_id, carl.user_id])
    await join_invite(carl, group.room_id)
    await teacher.wait_for(group.room_id, lambda e: e["type"] == "m.room.member" and e["state_key"] == cluster.bot_id
                           and e["content"]["membership"] == "join", since=0, timeout=30)
    reply = await carl.command(group.room_id, "!join PHYS12")
    assert "is not the server of a school" in reply["body"]
    reply = await carl.command(group.room_id, "!roster PHYS12")
    assert reply["body"] == "Only a teacher of Physics 12 can use !roster."
    reply = await carl.command(group.room_id, '!class new "Rogue"')
    assert "Only staff" in reply["body"]
    reply = await teacher.command(class_room, f"!class add {carl.user_id}")
    assert "is not the server of a school" in reply["body"]


async def test_no_action_on_messages_from_before_the_bot_joined(cluster):
    teacher = cluster.teacher_b
    resp = await teacher.client.room_create(name="Planning")
    room = resp.room_id
    early = await teacher.send(room, "!schools")
    await teacher.client.room_invite(room, cluster.bot_id)
    await teacher.wait_for(room, lambda e: e["type"] == "m.room.member" and e["state_key"] == cluster.bot_id
                           and e["content"]["membership"] == "join", since=0, timeout=30)
    reply = await teacher.command(room, "!schools")
    assert "Kura A" in reply["body"]
    await asyncio.sleep(1)
    assert replies_to(teacher, room, early) == []


async def test_killed_bot_acts_once_on_every_command(cluster, new_user, hs_b):
    learner = await new_user(hs_b, "restart")
    dm = await open_dm(learner, cluster.bot_id)
    answered = [await learner.command(dm, f"!help {name}") for name in ("join", "classes", "schools")]
    sent = [a["m.relates_to"]["m.in_reply_to"]["event_id"] for a in answered]
    cluster.bot.kill()
    while_down = await learner.send(dm, "!classes")
    cluster.bot.start()
    await learner.wait_for(dm, lambda e: (e["content"].get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id") == while_down, since=0, timeout=60)
    after = await learner.command(dm, "!schools")
    assert "Kura B" in after["body"]
    await asyncio.sleep(2)  # time for any duplicate to arrive
    for event_id in [*sent, while_down]:
        assert len(replies_to(learner, dm, event_id)) == 1, event_id
