"""One person's flood of commands Ako cannot act on is answered once, then ignored for a while
(issue 16, item 12); commands that work are never held back, and nobody else is affected."""

from bot.flood import FloodGate, flood_notice


def test_the_tenth_failure_in_a_minute_starts_one_quiet_spell_for_that_sender_only():
    gate = FloodGate(limit=10, window=60, quiet=60)
    started = [gate.failed("@flood:a.test", 100 + i) for i in range(10)]
    assert started == [False] * 9 + [True]  # said once
    assert gate.ignoring("@flood:a.test", 110)
    assert not gate.ignoring("@ben:b.test", 110)
    assert gate.ignoring("@flood:a.test", 168.9)  # quiet from the tenth (at 109) for 60 s
    assert not gate.ignoring("@flood:a.test", 169)  # a minute later: heard again
    assert not gate.failed("@flood:a.test", 171)  # and counting starts afresh


def test_failures_spread_out_never_start_a_quiet_spell():
    gate = FloodGate(limit=10, window=60, quiet=60)
    assert not any(gate.failed("@slow:a.test", i * 7.0) for i in range(100))  # one every 7 s
    assert not gate.ignoring("@slow:a.test", 700)


def test_the_notice_says_why_and_for_how_long():
    text = flood_notice(FloodGate(limit=10, window=60, quiet=60), "!")
    assert "10 commands in 60 s" in text and "ignore your commands for 60 s" in text and "`!help`" in text
