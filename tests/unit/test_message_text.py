"""The reply fallback (Matrix spec, "Rich replies": quoted lines, then an empty line) is taken off a
reply's body, once, for commands and hand-ins alike; a message that is no reply keeps its quote."""

from commands.message_text import without_reply_fallback

REPLY = {"m.in_reply_to": {"event_id": "$asked"}}


def test_a_reply_loses_its_fallback():
    content = {"body": "> <@ana:a.test> my answer\n> second line\n\n!submit A1", "m.relates_to": REPLY}
    assert without_reply_fallback(content) == "!submit A1"


def test_a_message_that_is_no_reply_keeps_its_quote():
    content = {"body": "> Newton said so\n\nand I agree"}
    assert without_reply_fallback(content) == "> Newton said so\n\nand I agree"


def test_a_reply_without_a_fallback_is_left_whole():
    content = {"body": "my answer\n> with a quote later", "m.relates_to": REPLY}
    assert without_reply_fallback(content) == "my answer\n> with a quote later"


def test_an_odd_body_is_text_or_nothing():
    assert without_reply_fallback({"body": None, "m.relates_to": REPLY}) == ""
    assert without_reply_fallback({"body": "  hi  ", "m.relates_to": "not a dict"}) == "hi"
