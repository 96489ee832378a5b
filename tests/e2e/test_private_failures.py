"""Issue 16, items 1 and 2, over real Matrix: a private command refused in public leaves no trace there,
and a group "direct message" gets no gradebook.

The bot runs as a process on school A; the teacher is on A, Ben (a learner) on B and Ana on A. What a
learner sees of the class room is read from B's own server, through Ben's account.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests import security_doc

from .helpers import class_with_ana_and_ben

SECRET = "you copied part 2"
FIGURES: dict[str, object] = {}


def _redaction_of(event_id: str):
    return lambda e: e["type"] == "m.room.redaction" and event_id in (e.get("redacts"), e["content"].get("redacts"))


def _from_bot(bot_id: str, *words: str):
    def match(e: dict) -> bool:
        body = e["content"].get("body") or ""
        return e["type"] == "m.room.message" and e["sender"] == bot_id and all(w in body for w in words)

    return match


@pytest.fixture(scope="module")
async def klass(cluster, hs_a, hs_b):
    async with class_with_ana_and_ben(cluster, hs_a, hs_b, "Private failures", "PRIV16") as k:
        reply = await k.teacher.command(k.class_room, '!assign new "Essay" due in 14 days points 20\nWrite about a river.')
        assert "Posted **A1" in reply["body"], reply["body"]
        yield dict(bot_id=cluster.bot_id, teacher=k.teacher, ben=k.ben, ana=k.ana, class_room=k.class_room,
                   staff_room=k.staff_room, work={k.ben.user_id: k.ben_work, k.ana.user_id: k.ana_work},
                   code=k.code, name=k.name, teacher_dm=k.teacher_dm)


async def test_refused_private_commands_typed_in_the_class_room_leave_no_trace_there(klass):
    k = klass
    bot_id, teacher, ben, ana, class_room = k["bot_id"], k["teacher"], k["ben"], k["ana"], k["class_room"]
    cases = [  # (who types it, the command, where the answer goes, what it must say)
        (teacher, f"!grade A1 {ben.user_id} 25 Weak: {SECRET}", k["staff_room"], "25 is more than the 20 points A1 is out of"),
        (ben, f"!submit A1 my essay\x0bpart two: {SECRET}", k["work"][ben.user_id], "The work contains control characters."),
        (ana, f"!return A1 {ben.user_id} {SECRET}", k["work"][ana.user_id], f"Only a teacher of {k['name']} can use !return."),
        (teacher, f"!return A7 {ben.user_id} {SECRET}", k["staff_room"], f"{k['name']} has no assignment A7"),
    ]
    for words in ("Posted **A1", "Hand it in"):  # what the bot said before: all in Ben's view of the room first
        await ben.wait_for(class_room, _from_bot(bot_id, words), since=0, timeout=30)
    class_mark = ben.mark(class_room)
    sent = []
    for user, command, answer_room, answer in cases:
        mark = user.mark(answer_room)
        sent.append((user, await user.send(class_room, command), answer_room, answer, mark))
    for user, event_id, answer_room, answer, mark in sent:
        # the answer, privately, with the reason it is there
        note = await user.wait_for(answer_room, _from_bot(bot_id, "in the class room", "removed it from there", answer), since=mark, timeout=60)
        assert "Nothing was recorded: " + answer in note["content"]["body"], note["content"]["body"]
        # taken out of the class room, as a learner on school B sees it from B's own server
        await ben.wait_for(class_room, _redaction_of(event_id), since=0, timeout=60)
        resp = await ben.client.room_get_event(class_room, event_id)
        assert resp.event.source["content"] == {} and "redacted_because" in resp.event.source["unsigned"], resp.event.source
    # the class room got nothing from the bot but the redactions, and nothing in it repeats the commands
    await asyncio.sleep(2)
    said = [e for e in ben.timeline(class_room)[class_mark:] if e["sender"] == bot_id and e["type"] != "m.room.redaction"]
    seen = json.dumps(await ben.messages(class_room, limit=50))
    traces = len(said) + seen.count(SECRET) + seen.count("25 is more than") + seen.count("control characters")
    assert said == [] and traces == 0, (said, seen[:500])
    grades = await teacher.command(k["staff_room"], "!grades")
    assert "Gradebook" in grades["body"] and "/20" not in grades["body"].split("\n", 1)[1], grades["body"]  # nothing recorded
    FIGURES["refused private commands typed in the class room (!grade over the maximum, !submit with a vertical tab, "
            "!return by a learner, !return of an unknown assignment), teacher on A, learners on A and B"] = len(cases)
    FIGURES["… redacted, as read from school B's server"] = f"{len(cases)} of {len(cases)}"
    FIGURES["… answered in the work room / staff room instead"] = f"{len(cases)} of {len(cases)}"
    FIGURES["**public traces of refused private commands** (the bot's messages in the class room, or text of the commands, as B reads it)"] = f"**{traces}**"


async def test_a_group_direct_message_gets_no_gradebook(klass):
    k = klass
    teacher, ana, bot_id = k["teacher"], k["ana"], k["bot_id"]
    resp = await teacher.client.room_create(is_direct=True, invite=[bot_id, ana.user_id], name="Catch-up")
    group = resp.room_id
    await teacher.wait_for(
        group, lambda e: e["type"] == "m.room.member" and e["state_key"] == bot_id and e["content"]["membership"] == "join",
        since=0, timeout=30,
    )
    staff_mark = teacher.mark(k["staff_room"])
    reply = await teacher.command(group, f"!grades {k['code']}")
    body = reply["body"]
    assert body.startswith("This room has other people in it; I send grades only in a direct message with just you and me."), body
    assert "Gradebook" not in body and ana.user_id not in body
    book = await teacher.wait_for(k["staff_room"], _from_bot(bot_id, "Gradebook"), since=staff_mark, timeout=30)
    assert ana.user_id in book["content"]["body"]
    # the teacher's own DM (just the two of them) still gets it
    own = await teacher.command(k["teacher_dm"], f"!grades {k['code']}")
    assert own["body"].startswith(f"**Gradebook of {k['name']}**"), own["body"]
    FIGURES["`!grades` in a \"direct message\" its owner started with Ako and a learner: gradebook shown there"] = "0 (the reply names the problem; the gradebook goes to the staff room)"
    security_doc.record("private_failures", dict(FIGURES), __file__)
