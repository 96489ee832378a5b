"""What each sync event is to Ako (bot/routing.py), and whose invites it accepts
(commands/admission.py): pure functions, expectations written from SPEC §1, §3 and §5."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.routing import (
    IGNORE,
    AnswerInvite,
    AwaitKey,
    Ignore,
    Known,
    RestorePower,
    RunCommand,
    ShowListeners,
    after_own_join,
    carrier,
    route,
    route_invite,
)
from commands.admission import Standing, accepts_invite, refusal
from commands.dispatch import CommandEvent

BOT = "@ako:a.test"
ANA = "@ana:a.test"
ROOM = "!class:a.test"
THREADS = Known(BOT, "!", wanted=lambda event, root: root is not None)  # as the forum's listener wants


def message(content: dict, sender: str = ANA, event_id: str = "$m1") -> dict:
    return {"type": "m.room.message", "sender": sender, "event_id": event_id, "content": content}


def test_a_command_becomes_the_command_event_without_its_prefix():
    action = route(ROOM, message({"msgtype": "m.text", "body": "!submit A1 my essay"}), THREADS)
    assert action == RunCommand(CommandEvent(ANA, ROOM, "$m1", "submit A1 my essay", thread_root=None, reply_to=None))


def test_a_command_in_a_thread_and_in_reply_keeps_both():
    content = {
        "msgtype": "m.text",
        "body": "!grade A1 @ben:b.test 7/10",
        "m.relates_to": {"rel_type": "m.thread", "event_id": "$root", "m.in_reply_to": {"event_id": "$asked"}},
    }
    action = route(ROOM, message(content), THREADS)
    assert isinstance(action, RunCommand)
    assert (action.command.thread_root, action.command.reply_to) == ("$root", "$asked")


def test_a_threads_fallback_reply_is_not_a_reply():
    content = {
        "msgtype": "m.text",
        "body": "!topics",
        "m.relates_to": {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True, "m.in_reply_to": {"event_id": "$last"}},
    }
    action = route(ROOM, message(content), THREADS)
    assert action.command.reply_to is None and action.command.thread_root == "$root"


def test_a_thread_reply_goes_to_the_listeners_that_want_it():
    event = message({"msgtype": "m.text", "body": "I think it is 9.8", "m.relates_to": {"rel_type": "m.thread", "event_id": "$topic"}})
    assert route(ROOM, event, THREADS) == ShowListeners(ANA, ROOM, event, "$topic")


def test_ordinary_chat_is_ignored_when_no_listener_wants_it():
    assert route(ROOM, message({"msgtype": "m.text", "body": "hello all"}), THREADS) is IGNORE
    nobody = Known(BOT, "!")
    thread = message({"msgtype": "m.text", "body": "a reply", "m.relates_to": {"rel_type": "m.thread", "event_id": "$t"}})
    assert route(ROOM, thread, nobody) is IGNORE


@pytest.mark.parametrize(
    "event",
    [
        message({"msgtype": "m.text", "body": "!help"}, sender=BOT),  # Ako's own
        message({"msgtype": "m.notice", "body": "!help"}),  # a bot's notice
        message({"msgtype": "m.text", "body": "!help", "m.new_content": {"body": "!help"}}),  # an edit
        message({"msgtype": "m.text", "body": "* !help", "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}),
        message({"msgtype": "m.text", "body": "!"}),  # the prefix alone
        {"type": "m.room.member", "sender": ANA, "state_key": ANA, "content": {"membership": "join"}},
        {"type": "m.reaction", "sender": ANA, "content": {}},
        message("not a dict"),  # type: ignore[arg-type]
    ],
)
def test_what_is_no_command_and_no_listeners_business_is_ignored(event):
    assert isinstance(route(ROOM, event, THREADS), Ignore)


def test_power_levels_changed_by_someone_else_are_restored_but_not_ako_s_own():
    content = {"users": {ANA: 100}}
    event = {"type": "m.room.power_levels", "state_key": "", "sender": ANA, "content": content, "event_id": "$p"}
    assert route(ROOM, event, THREADS) == RestorePower(ANA, ROOM, content)
    assert route(ROOM, {**event, "sender": BOT}, THREADS) is IGNORE


def test_an_event_nio_could_not_decrypt_waits_for_its_key():
    event = {"type": "m.room.encrypted", "sender": ANA, "event_id": "$e", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
    assert route(ROOM, event, THREADS) == AwaitKey(ROOM, event)


def _invite(inviter: str, direct: bool, for_whom: str = BOT):
    return [
        SimpleNamespace(type="m.room.name", state_key="", sender=inviter, content={"name": "x"}),
        SimpleNamespace(state_key=for_whom, membership="invite", sender=inviter, content={"membership": "invite", "is_direct": direct}),
    ]


def test_an_invite_names_its_inviter_and_whether_it_is_direct():
    assert route_invite("!dm:b.test", _invite("@ben:b.test", True), THREADS) == AnswerInvite("!dm:b.test", "@ben:b.test", True)
    assert route_invite("!g:b.test", _invite("@ben:b.test", False), THREADS) == AnswerInvite("!g:b.test", "@ben:b.test", False)
    assert route_invite("!o:b.test", _invite("@ben:b.test", True, for_whom="@other:a.test"), THREADS) is IGNORE


def _who(operator=False, staff=False, of_a_school=False, blocked=False) -> Standing:
    return Standing("@x:b.test", operator, staff, of_a_school, blocked)


# (standing, direct, guests allowed) → accepted; SPEC §1 "Rooms and invites", §5 blocking
INVITES = [
    (_who(operator=True), False, False, True),
    (_who(staff=True, of_a_school=True), False, False, True),
    (_who(of_a_school=True), True, False, True),  # a learner opens a DM
    (_who(of_a_school=True), False, False, False),  # …but brings Ako into no group room
    (_who(), True, False, False),  # a stranger's DM
    (_who(), True, True, True),  # …unless guests are allowed
    (_who(), False, True, False),
    (_who(of_a_school=True, blocked=True), True, False, False),
    (_who(staff=True, of_a_school=True, blocked=True), False, False, False),
    (_who(operator=True, blocked=True), False, False, True),  # operators are never refused
]


@pytest.mark.parametrize("who, direct, guests, accepted", INVITES)
def test_whose_invites_are_accepted(who, direct, guests, accepted):
    assert accepts_invite(who, direct, guests) is accepted


def test_a_blocked_servers_user_is_refused_with_a_sentence_naming_the_server():
    assert refusal(_who(blocked=True)) == "b.test is blocked in this cluster; I take no commands from its users."
    assert refusal(_who()) is None and refusal(_who(operator=True, blocked=True)) is None


def _join(user: str, before: str | None = None) -> dict:
    e = {"type": "m.room.member", "state_key": user, "sender": user, "content": {"membership": "join"}}
    if before:
        e["unsigned"] = {"prev_content": {"membership": before}}
    return e


def test_only_what_follows_ako_s_own_join_counts():
    early, late = message({"body": "!a"}, event_id="$1"), message({"body": "!b"}, event_id="$2")
    assert after_own_join([early, _join(BOT), late], BOT) == [late]
    assert after_own_join([early, late], BOT) == [], "without the join in view, nothing counts"
    assert after_own_join([early, _join(BOT), late, _join(BOT, before="join")], BOT) == [late, _join(BOT, before="join")], (
        "a profile change is not a join"
    )


def test_the_last_event_that_records_anything_carries_the_batch_position():
    cmd, listen = RunCommand(CommandEvent(ANA, ROOM, "$c", "help")), ShowListeners(ANA, ROOM, {}, "$t")
    power, key = RestorePower(ANA, ROOM, {}), AwaitKey(ROOM, {})
    assert carrier([cmd, IGNORE, listen, IGNORE]) == 2
    assert carrier([listen, cmd]) == 1
    assert carrier([cmd, key]) is None, "an unreadable event after it would be lost if the command moved the position"
    assert carrier([cmd, power, IGNORE]) is None
    assert carrier([IGNORE, IGNORE]) is None and carrier([]) is None
