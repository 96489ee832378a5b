"""Forum topics: the root in the class room, replies counted once, !topics, close/reopen/pin, answers in threads."""

from datetime import timedelta

from .conftest import NOW
from .fakes import LEARNER_A, LEARNER_B, SHARED_DM, TEACHER_A, TEACHER_B, classroom, texts


async def start_topic(h, c, who=LEARNER_A, text='!topic "Pendulum question"\nWhy does *g* not depend on the mass?'):
    out = await h.run(who, c.class_room, text)
    sent = await h.deliver()
    topic = (await h.repos.topics.activity(c.klass.id))[0].topic
    return out, sent[topic.root_txn_id]


async def test_topic_posts_a_thread_root_in_the_class_room_and_is_recorded(h):
    c = await classroom(h)
    out, root = await start_topic(h, c)
    assert len(out) == 1  # asked in the class room: the root itself is the answer
    post = out[0]
    assert post.room_id == c.class_room and post.thread_root is None and post.reply_to is None
    assert post.txn_key.startswith(f"ako.topic.{c.klass.id}.1.")
    assert "**T1 · Pendulum question**" in post.markdown and "Why does *g* not depend on the mass?" in post.markdown
    assert post.mentions == ()  # names its author without pinging anyone
    topic = await h.repos.topics.by_root(c.class_room, root)
    assert topic.title == "Pendulum question" and topic.author == LEARNER_A

    # from a DM with the class code, or from a thread: it still goes to the class room, and the asker hears back
    out = await h.run(TEACHER_A, SHARED_DM, '!topic PHYS12 "Exam dates"')
    assert [m.room_id for m in out if m.txn_key] == [c.class_room]
    assert "Started **T2 · Exam dates** in the class room of Physics 12." in texts(out, SHARED_DM)


async def test_topic_bad_input_and_outsiders(h):
    c = await classroom(h)
    assert "needs <title>" in await h.say(LEARNER_A, c.class_room, "!topic")
    assert "Only a member of Physics 12" in await h.say(TEACHER_B, c.class_room, '!topic "Hi"')
    assert "at most 200" in await h.say(LEARNER_A, c.class_room, '!topic "' + "x" * 201 + '"')


async def test_replies_from_two_schools_are_counted_once_and_a_teacher_answers(h):
    c = await classroom(h)
    _, root = await start_topic(h, c)
    reply = await h.say(TEACHER_A, c.class_room, "!topics")
    assert "**T1 · Pendulum question** — no replies yet" in reply and "**unanswered**" in reply

    h.clock.advance(minutes=5)
    assert await h.reply_in_thread(LEARNER_B, c.class_room, root, event_id="$ben1")
    assert not await h.reply_in_thread(LEARNER_B, c.class_room, root, event_id="$ben1")  # the same event again
    h.clock.advance(minutes=5)
    await h.reply_in_thread(LEARNER_A, c.class_room, root)
    reply = await h.say(LEARNER_B, c.class_room, "!topics")
    assert "2 replies from 2 people" in reply and "**unanswered**" in reply
    assert "last activity Mon 30 Nov 2026, 16:10 NZDT (Pacific/Auckland)" in reply

    await h.reply_in_thread(TEACHER_A, c.class_room, root)
    reply = await h.say(LEARNER_B, c.class_room, "!topics")
    assert "3 replies from 3 people" in reply and "unanswered" not in reply


async def test_only_thread_replies_under_a_topic_count(h):
    c = await classroom(h)
    _, root = await start_topic(h, c)
    await h.reply_in_thread(LEARNER_B, c.class_room, "$some-other-thread")
    await h.reply_in_thread(LEARNER_B, c.work[LEARNER_B], root)  # same root id, another room
    plain = {"type": "m.room.message", "sender": LEARNER_B, "event_id": "$plain", "content": {"msgtype": "m.text", "body": "hi"}}
    await h.dispatcher.observe(LEARNER_B, c.class_room, plain, None)
    assert "no replies yet" in await h.say(LEARNER_B, c.class_room, "!topics")


async def test_a_reply_counted_after_downtime_keeps_its_own_time(h):
    c = await classroom(h)
    _, root = await start_topic(h, c)
    sent = NOW + timedelta(minutes=30)
    h.clock.advance(hours=3)  # the bot was down; the reply arrives in the catch-up sync
    await h.reply_in_thread(LEARNER_B, c.class_room, root, ts=int(sent.timestamp() * 1000))
    assert "last activity Mon 30 Nov 2026, 16:30 NZDT" in await h.say(LEARNER_B, c.class_room, "!topics")
    # a server claiming the future is not believed
    await h.reply_in_thread(LEARNER_B, c.class_room, root, ts=int((NOW + timedelta(days=9)).timestamp() * 1000))
    assert "last activity Mon 30 Nov 2026, 19:00 NZDT" in await h.say(LEARNER_B, c.class_room, "!topics")


async def test_close_posts_in_the_thread_and_hides_it_reopen_and_pin(h):
    c = await classroom(h)
    _, root = await start_topic(h, c)
    await h.run(TEACHER_A, c.class_room, '!topic "Exam dates"')
    await h.deliver()

    assert "Only a teacher of Physics 12" in await h.say(LEARNER_A, c.class_room, "!topic close T1")
    out = await h.run(TEACHER_A, c.class_room, "!topic close T1")
    notice = [m for m in out if m.thread_root == root and m.reply_to is None]
    assert len(notice) == 1 and "This topic is closed" in notice[0].markdown and notice[0].room_id == c.class_room
    assert "Closed **T1 · Pendulum question**." in texts(out)
    assert "already closed" in await h.say(TEACHER_A, c.class_room, "!topic close T1")
    listing = await h.say(LEARNER_A, c.class_room, "!topics")
    assert "T1" not in listing and "T2 · Exam dates" in listing
    assert "T1 · Pendulum question" in await h.say(LEARNER_A, c.class_room, "!topics all")

    out = await h.run(TEACHER_A, c.class_room, "!topic reopen T1")
    assert any(m.thread_root == root and "open again" in m.markdown for m in out)
    # someone pinned a message of their own before: it stays through pin and unpin
    await h.matrix.set_state(c.class_room, "m.room.pinned_events", "", {"pinned": ["$theirs"]})
    assert "among the room's pinned messages" in await h.say(TEACHER_A, c.class_room, "!topic pin T1")
    assert (await h.matrix.state(c.class_room, "m.room.pinned_events"))["pinned"] == ["$theirs", root]
    listing = await h.say(LEARNER_A, c.class_room, "!topics")
    assert listing.index("📌 **T1") < listing.index("T2 · Exam dates")
    assert "already pinned" in await h.say(TEACHER_A, c.class_room, "!topic pin T1")
    assert "out of the room's pinned messages" in await h.say(TEACHER_A, c.class_room, "!topic unpin T1")
    assert (await h.matrix.state(c.class_room, "m.room.pinned_events"))["pinned"] == ["$theirs"]
    assert "📌" not in await h.say(LEARNER_A, c.class_room, "!topics")
    assert "has no topic T9" in await h.say(TEACHER_A, c.class_room, "!topic close T9")
    assert "is not a topic id" in await h.say(TEACHER_A, c.class_room, "!topic close A1")


async def test_commands_asked_in_a_thread_are_answered_in_that_thread(h):
    c = await classroom(h)
    _, root = await start_topic(h, c)
    out = await h.run(LEARNER_B, c.class_room, "!topics", thread_root=root)
    assert out and all(m.thread_root == root and m.reply_to for m in out)
    h.clock.advance(minutes=1)
    await h.reply_in_thread(LEARNER_B, c.class_room, root)
    assert "1 reply from 1 person" in await h.say(LEARNER_B, c.class_room, "!topics")  # the command was not a reply


async def test_topics_in_a_dm_are_shown_in_the_callers_own_zone(h):
    c = await classroom(h)
    await start_topic(h, c)
    await h.say(LEARNER_A, SHARED_DM, "!tz Europe/London")
    reply = await h.say(LEARNER_A, SHARED_DM, "!topics PHYS12")
    assert "Mon 30 Nov 2026, 03:00 GMT (Europe/London)" in reply
    assert "NZDT (Pacific/Auckland)" in await h.say(LEARNER_A, c.class_room, "!topics")  # the class reads the class room
