"""The real-homeserver harness itself: three federating Synapse servers, nio users."""

from __future__ import annotations

import asyncio
import os

import pytest

from devtools.homeserver import Homeserver
from tests.matrix_user import MatrixError, MatrixUser

pytestmark = pytest.mark.e2e


def is_text(body: str):
    return lambda ev: ev["type"] == "m.room.message" and ev["content"]["body"] == body


async def test_servers_are_distinct_and_registration_is_idempotent(homeservers: list[Homeserver]):
    assert len(homeservers) == 3
    assert len({hs.server_name for hs in homeservers}) == 3
    for hs in homeservers:
        assert hs.is_running()
        assert hs.server_name == f"localhost:{hs.fed_port}"
        assert hs.client_url == f"http://127.0.0.1:{hs.client_port}"
    hs = homeservers[0]
    user_id, token = hs.register("harness-repeat", "secret")
    assert user_id == hs.user_id("harness-repeat")
    again_id, again_token = hs.register("harness-repeat", "secret")  # exists: logs in instead
    assert (again_id, again_token != token) == (user_id, True)


async def test_federated_dm_messages_threads_and_media(hs_a, hs_b, hs_c, new_user):
    a = await new_user(hs_a, "alice")
    b = await new_user(hs_b, "bob")
    c = await new_user(hs_c, "carol")

    # A invites B (cross-server); B joins with the retry-on-403 dance
    room = await a.dm(b.user_id)
    invited = await b.wait_invite(lambda inv: inv["sender"] == a.user_id)
    assert invited == room
    await b.join(room)
    await a.wait_for(
        room,
        lambda ev: ev["type"] == "m.room.member" and ev["state_key"] == b.user_id
        and ev["content"]["membership"] == "join",
        since=0,
    )

    # B -> A over federation
    mark = a.mark(room)
    sent = await b.send(room, "hello from B", formatted_body="<b>hello</b> from B")
    ev = await a.wait_for(room, is_text("hello from B"), since=mark)
    assert ev["event_id"] == sent and ev["sender"] == b.user_id
    assert ev["content"]["formatted_body"] == "<b>hello</b> from B"

    # C (a third server) is invited into the same room and talks too
    await a.client.room_invite(room, c.user_id)
    assert await c.wait_invite() == room
    await c.join(room)
    mark_a, mark_b = a.mark(room), b.mark(room)
    from_c = await c.send(room, "hello from C")
    await a.wait_for(room, is_text("hello from C"), since=mark_a)
    await b.wait_for(room, is_text("hello from C"), since=mark_b)

    # replies and threads carry the right relations across servers
    reply = await a.send(room, "reply to B", reply_to=sent)
    ev = await b.wait_for(room, lambda e: e["event_id"] == reply, since=mark_b)
    assert ev["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == sent
    # (C joined after `sent`, so C's server does not know it: B threads on it, C sees it)
    mark_c = c.mark(room)
    in_thread = await b.send(room, "in thread", thread_root=sent)
    ev = await c.wait_for(room, lambda e: e["event_id"] == in_thread, since=mark_c)
    rel = ev["content"]["m.relates_to"]
    assert rel["rel_type"] == "m.thread" and rel["event_id"] == sent

    # command(): a notice from someone else, replying to the sent event, is the answer
    async def answer_commands():
        ev = await a.wait_for(room, is_text("!ping"))
        await a.send_content(
            room,
            {"msgtype": "m.notice", "body": "pong", "m.relates_to": {"m.in_reply_to": {"event_id": ev["event_id"]}}},
        )

    responder = asyncio.create_task(answer_commands())
    answer = await b.command(room, "!ping")
    await responder
    assert answer["body"] == "pong" and answer["sender"] == a.user_id and answer["event_id"]
    assert any(n["body"] == "pong" for n in b.notices(room))

    # an upload from B (media on B's server) is downloadable by A via authenticated media
    data = os.urandom(300_000)
    mark = a.mark(room)
    file_event = await b.send_file(room, data, "essay.pdf", "application/pdf")
    ev = await a.wait_for(room, lambda e: e["event_id"] == file_event, since=mark)
    assert ev["content"]["msgtype"] == "m.file" and ev["content"]["info"]["size"] == len(data)
    assert ev["content"]["url"].startswith(f"mxc://{hs_b.server_name}/")
    assert await a.download(ev["content"]["url"]) == data

    # /messages: members can read history; an outsider gets an error
    # (only what C's server holds for sure: older history depends on backfill)
    history = await c.messages(room)
    assert {from_c, in_thread, file_event} <= {e.get("event_id") for e in history}
    outsider = await new_user(hs_b, "eve")
    with pytest.raises(MatrixError):
        await outsider.messages(room)

    # waiting for something that never comes fails with a list of what was seen
    with pytest.raises(TimeoutError, match="hello from C"):
        await a.wait_for(room, is_text("never sent"), timeout=0.5, since=mark_a)


async def test_local_dm_and_restartable_user(hs_a, new_user):
    a1 = await new_user(hs_a, "teacher")
    a2 = await new_user(hs_a, "learner")
    room = await a1.dm(a2.user_id)
    invite_room = await a2.wait_invite(lambda inv: inv["is_direct"])
    assert invite_room == room
    await a2.join(room)
    mark = a1.mark(room)
    await a2.send(room, "local hello")
    await a1.wait_for(room, is_text("local hello"), since=mark)
    # logging in again as an existing user (as `ako dev` restarts do) works
    again = await MatrixUser.create(hs_a, a1.user_id.split(":")[0][1:], password=f"pw-{a1.user_id.split(':')[0][1:]}")
    try:
        assert again.user_id == a1.user_id
        assert any(e["event_id"] for e in await again.messages(room))
    finally:
        await again.close()
