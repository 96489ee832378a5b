"""The benchmark's arithmetic (bench/): percentiles, goals, profile summaries. No timings."""

from __future__ import annotations

import math

from bench.profiling import summarise
from bench.report import goals, table
from bench.stats import Summary, percentile, ratio


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.5
    assert math.isclose(percentile(values, 95), 95.05)
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_summary_is_in_milliseconds_and_ratio_tolerates_missing():
    s = Summary.of([0.1, 0.2, 0.3])
    assert (s.n, s.median_ms, s.max_ms) == (3, 200.0, 300.0)
    assert math.isnan(ratio(1.0, 0.0)) and math.isnan(ratio(math.nan, 2.0))


def test_goals_name_each_miss():
    results = {
        "round_trip": [{
            "command": "!submit", "where": "same server", "n": 100, "median_ms": 120.0, "p95_ms": 150.0,
            "echo_median_ms": 100.0, "echo_p95_ms": 136.0, "ratio_median": 1.2, "ratio_p95": 1.1,
        }],
        "rush": {"learners": 3, "ratio_p95": 2.0, "ako": {"answered": 3, "errors": 0, "duplicates": 1}},
        "scale": [
            {"rooms": 10, "restart_to_first_reply_s": 2.0, "hwm_mb": 80.0, "ratio_vs_empty": 1.0},
            {"rooms": 1000, "restart_to_first_reply_s": 12.0, "hwm_mb": 120.0, "ratio_vs_empty": 1.1},
        ],
    }
    verdicts = {g["goal"]: g["met"] for g in goals(results)}
    assert verdicts["round trip !submit (same server): median ≤ 1.15× echo"] is False
    assert verdicts["round trip !submit (same server): p95 ≤ 1.3× echo"] is True
    assert verdicts["rush: no duplicate answers"] is False
    assert verdicts["restart to first reply at 1000 rooms ≤ 10 s"] is False
    assert verdicts["memory (peak RSS) ≤ 300 MB"] is True
    assert "MISS  round trip !submit (same server): median" in table({"round_trip": results["round_trip"], "goals": goals(results)})


def test_profile_summary_leaves_out_idle_threads(tmp_path):
    raw = tmp_path / "profile.txt"
    raw.write_text(
        "run (asyncio/base_events.py:607);EpollSelector.select (selectors.py:468) 70\n"
        "run (asyncio/base_events.py:607);Dispatcher.handle (commands/dispatch.py:72);fetch (storage/db.py:136) 20\n"
        "run (asyncio/base_events.py:607);Ako.enqueue (bot/runtime.py:411);to_html (bot/render.py:32) 10\n"
    )
    s = summarise(raw)
    assert (s["samples"], s["idle_samples"]) == (30, 70)
    assert s["self"][0] == ("fetch (storage/db.py:136)", 66.7)
    assert ("Dispatcher.handle (commands/dispatch.py)", 66.7) in s["own_inclusive"]
