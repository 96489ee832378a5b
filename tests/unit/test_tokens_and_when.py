from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from commands import when
from commands.errors import BadArgument
from commands.tokens import tokenize

AKL = ZoneInfo("Pacific/Auckland")


def test_tokenizer_quotes_and_offsets():
    toks = tokenize('class new "Physics 12" PHYS12')
    assert [t.text for t in toks] == ["class", "new", "Physics 12", "PHYS12"]
    assert toks[2].quoted and not toks[3].quoted
    assert tokenize("a “curly quoted” b")[1].text == "curly quoted"
    assert [t.text for t in tokenize("don't split apostrophes")] == ["don't", "split", "apostrophes"]


def test_tokenizer_unclosed_quote_is_a_sentence():
    with pytest.raises(BadArgument, match="never closed"):
        tokenize('class new "Physics 12')


NOW = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)  # Monday 16:00 NZDT


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-12-04 17:00", datetime(2026, 12, 4, 17, 0, tzinfo=AKL)),
        ("2026-12-04", datetime(2026, 12, 4, 23, 59, tzinfo=AKL)),
        ("friday 5pm", datetime(2026, 12, 4, 17, 0, tzinfo=AKL)),
        ("Fri 17:00", datetime(2026, 12, 4, 17, 0, tzinfo=AKL)),
        ("tomorrow 9:00", datetime(2026, 12, 1, 9, 0, tzinfo=AKL)),
        ("in 3 days", datetime(2026, 12, 3, 16, 0, tzinfo=AKL)),
        ("in 90 seconds", datetime(2026, 11, 30, 16, 1, 30, tzinfo=AKL)),
        ("monday 9am", datetime(2026, 12, 7, 9, 0, tzinfo=AKL)),  # today is Monday 16:00: next week
        ("next monday 9am", datetime(2026, 12, 7, 9, 0, tzinfo=AKL)),
        ("5pm", datetime(2026, 11, 30, 17, 0, tzinfo=AKL)),
        ("3pm", datetime(2026, 12, 1, 15, 0, tzinfo=AKL)),
    ],
)
def test_when_forms(text, expected):
    assert when.parse_when(text, NOW, AKL) == expected


@pytest.mark.parametrize("text", ["banana", "2026-13-01", "friday 25pm", "in 3 bananas", ""])
def test_when_rejects(text):
    assert when.parse_when(text, NOW, AKL) is None


def test_when_across_dst_end_april():
    # NZ daylight saving ends Sun 5 Apr 2026 03:00 NZDT -> 02:00 NZST.
    before = datetime(2026, 4, 3, 22, 0, tzinfo=timezone.utc)  # Sat 4 Apr 11:00 NZDT
    moment = when.parse_when("in 2 days", before, AKL)
    assert moment.astimezone(AKL).hour == 11 and moment.astimezone(AKL).tzname() == "NZST"
    assert moment - before == timedelta(days=2, hours=1)
    exact = when.parse_when("in 48 hours", before, AKL)
    assert exact - before == timedelta(hours=48)


def test_when_in_dst_gap_moves_forward():
    # NZ daylight saving starts Sun 27 Sep 2026 02:00 -> 03:00: 02:30 does not exist.
    moment = when.parse_when("2026-09-27 02:30", datetime(2026, 9, 1, tzinfo=timezone.utc), AKL)
    assert moment.astimezone(AKL).hour == 3 and moment.astimezone(AKL).tzname() == "NZDT"


def test_show_names_the_zone():
    text = when.show(datetime(2026, 12, 4, 4, 0, tzinfo=timezone.utc), AKL)
    assert text == "Fri 4 Dec 2026, 17:00 NZDT (Pacific/Auckland)"


@pytest.mark.parametrize("text, minutes", [("24h", 1440), ("90m", 90), ("1h30m", 90), ("2d", 2880), ("1w", 10080)])
def test_durations(text, minutes):
    assert when.parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "h", "10", "3x", "-1h", "0h"])
def test_bad_durations(text):
    assert when.parse_duration(text) is None


def test_zone_names():
    assert when.zone("Europe/London").key == "Europe/London"
    with pytest.raises(ValueError, match="not a time zone"):
        when.zone("Mars/Olympus")
