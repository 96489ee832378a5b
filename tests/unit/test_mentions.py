"""Mention pills become Matrix ids at the pill's own place only (issue 16, item 3).

A pill's label is its user's display name, which they choose (or their server forges): it must
never move a command's target. Messages are written as Element sends them: the body has the
label, the HTML a matrix.to link around it.
"""

from __future__ import annotations

from bot.mentions import command_text

ANA, BEN, MALLORY = "@ana:a.test", "@ben:b.test", "@mallory:c.test"


def pill(user: str, label: str) -> str:
    return f'<a href="https://matrix.to/#/{user}">{label}</a>'


def message(body: str, formatted: str, **extra) -> dict:
    return {"msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": formatted, **extra}


def test_a_display_name_that_is_another_learners_id_does_not_change_whom_a_grade_is_for():
    # The teacher grades Ana (typed as her id) and mentions Ben in the feedback; Ben's display name is "@ana:a.test".
    typed = message(
        f"!grade A1 {ANA} 15 Compare with {ANA}'s method",
        f"!grade A1 {ANA} 15 Compare with {pill(BEN, ANA)}'s method",
    )
    assert command_text(typed) == f"!grade A1 {ANA} 15 Compare with {BEN}'s method"


def test_a_display_name_equal_to_an_earlier_word_is_replaced_where_the_pill_is():
    typed = message("!extend A1 A1 friday", f"!extend A1 {pill(MALLORY, 'A1')} friday")
    assert command_text(typed) == f"!extend A1 {MALLORY} friday"
    typed = message("!class remove remove", f"!class remove {pill(MALLORY, 'remove')}")
    assert command_text(typed) == f"!class remove {MALLORY}"


def test_several_pills_with_the_same_label_keep_their_order():
    typed = message("!class add Sam Sam", f"!class add {pill(ANA, 'Sam')} {pill(BEN, 'Sam')}")
    assert command_text(typed) == f"!class add {ANA} {BEN}"
    typed = message("!class add Ana B Ana", f"!class add {pill(BEN, 'Ana B')} {pill(ANA, 'Ana')}")
    assert command_text(typed) == f"!class add {BEN} {ANA}"


def test_pills_beside_markdown_entities_and_a_reply_fallback():
    typed = message(
        "!grade A1 Ben & Co 17 **Good** work",
        f"!grade A1 {pill(BEN, 'Ben &amp; Co')} 17 <strong>Good</strong> work",
    )
    assert command_text(typed) == f"!grade A1 {BEN} 17 **Good** work"
    reply = message(
        f"> <{ANA}> my answer\n\n!grade A1 Ben 17",
        f"<mx-reply><blockquote>{pill(ANA, 'Ana')} my answer</blockquote></mx-reply>!grade A1 {pill(BEN, 'Ben')} 17",
        **{"m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}},
    )
    assert command_text(reply) == f"!grade A1 {BEN} 17"
    encoded = message("!class add Ben", '!class add <a href="https://matrix.to/#/%40ben%3Ab.test">Ben</a>')
    assert command_text(encoded) == f"!class add {BEN}"


def test_a_body_that_already_has_the_id_or_does_not_match_the_html_is_left_alone():
    typed = message(f"!class add {BEN}", f"!class add {pill(BEN, 'Ben')}")
    assert command_text(typed) == f"!class add {BEN}"
    # an HTML that does not line up with the body: nothing is guessed
    forged = message("!class add Ben", f"!class remove Ana {pill(MALLORY, 'Ben')}")
    assert command_text(forged) == "!class add Ben"
