"""The benchmark's table, its goals, and the scaling chart."""

from __future__ import annotations

import math
from pathlib import Path

GOALS = {
    "median_ratio": 1.15,  # round trip median ≤ 1.15× echo
    "p95_ratio": 1.3,  # round trip p95 ≤ 1.3× echo
    "rush_p95_ratio": 3.0,  # deadline rush p95 ≤ 3× echo's p95 under the same burst
    "restart_s": 10.0,  # restart to first reply
    "memory_mb": 300.0,
    "scale_ratio": 1.2,  # round trip at scale ≤ 1.2× the empty case
}


def _f(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def goals(results: dict) -> list[dict]:
    """Every goal with what was measured and whether it was met."""
    out = []

    def add(name, measured, limit, met=None):
        ok = met if met is not None else (measured is not None and not math.isnan(measured) and measured <= limit)
        out.append({"goal": name, "measured": measured, "limit": limit, "met": bool(ok)})

    for row in results.get("round_trip", []):
        label = f"round trip {row['command']} ({row['where']})"
        add(f"{label}: median ≤ {GOALS['median_ratio']}× echo", row["ratio_median"], GOALS["median_ratio"])
        add(f"{label}: p95 ≤ {GOALS['p95_ratio']}× echo", row["ratio_p95"], GOALS["p95_ratio"])
    rush = results.get("rush")
    if rush and "ako" in rush:
        a = rush["ako"]
        add("rush: every learner answered", a["answered"], rush["learners"], met=a["answered"] == rush["learners"] and a["errors"] == 0)
        add("rush: no duplicate answers", a["duplicates"], 0, met=a["duplicates"] == 0)
        add(f"rush: p95 ≤ {GOALS['rush_p95_ratio']}× echo's p95", rush["ratio_p95"], GOALS["rush_p95_ratio"])
    scale = results.get("scale", [])
    if scale:
        for point in scale:
            add(f"restart to first reply at {point['rooms']} rooms ≤ {GOALS['restart_s']:.0f} s", point["restart_to_first_reply_s"], GOALS["restart_s"])
        peak = max((p.get("hwm_mb") or 0) for p in scale)
        add(f"memory (peak RSS) ≤ {GOALS['memory_mb']:.0f} MB", peak, GOALS["memory_mb"])
        for point in scale[1:]:
            add(
                f"round trip at {point['rooms']} rooms ≤ {GOALS['scale_ratio']}× at {scale[0]['rooms']} (echo-normalised)",
                point["ratio_vs_empty"], GOALS["scale_ratio"],
            )
    rem = results.get("reminders")
    if rem and "sent_once" in rem:
        add("reminders: all sent exactly once", rem["sent_once"], rem["count"], met=rem["sent_once"] == rem["count"] and rem["duplicates"] == 0)
    return out


def table(results: dict) -> str:
    lines = []
    cmds = results.get("commands", {})
    lines.append(f"Ako benchmark — {results.get('date')} — {results.get('mode')} — machine: {results.get('machine', {}).get('summary', '')}")
    lines.append(f"Commands: read {cmds.get('read')!r}, write {cmds.get('write')!r}, rush {cmds.get('rush')!r}; bot encryption={results.get('encryption')}")
    rt = results.get("round_trip", [])
    if rt:
        lines.append("")
        lines.append("1. Round trip (ms)              n  median    p95 │ echo median    p95 │ ×median   ×p95")
        for r in rt:
            lines.append(
                f"   {r['command'] + ' (' + r['where'] + ')':<27}{r['n']:>4} {_f(r['median_ms']):>7} {_f(r['p95_ms']):>6} │"
                f" {_f(r['echo_median_ms']):>11} {_f(r['echo_p95_ms']):>6} │ {_f(r['ratio_median'], 2):>7} {_f(r['ratio_p95'], 2):>6}"
                + (f"   ({r['errors']} wrong answers)" if r.get("errors") else "")
            )
    rush = results.get("rush")
    if rush:
        lines.append("")
        if "skipped" in rush:
            lines.append(f"2. Deadline rush: skipped ({rush['skipped']})")
        else:
            lines.append(
                f"2. Deadline rush: {rush['learners']} learners in {rush['classes']} classes on two servers, each once within "
                f"{rush['window_s']:.0f} s; Ako ran {rush['command']!r}"
            )
            lines.append("                 answered  dupes  median    p95    max  answers/s")
            for who in ("echo", "ako"):
                s = rush[who]
                lines.append(
                    f"   {who:<13}{s['answered']:>4}/{rush['learners']:<4}{s['duplicates']:>5} {_f(s['median_ms']):>7} {_f(s['p95_ms']):>6}"
                    f" {_f(s['max_ms'], 0):>6} {_f(s['per_s']):>9}" + (f"  ({s['errors']} wrong answers)" if s.get("errors") else "")
                )
            lines.append(f"   p95 ratio Ako/echo: {_f(rush['ratio_p95'], 2)} (echo: its bursts before and after Ako's, pooled)")
            lags = [(k, rush[k]) for k in ("echo_first", "ako", "echo_after") if k in rush]
            if lags:
                lines.append(
                    "   harness event-loop lag p95/max (ms): "
                    + ", ".join(f"{k} {_f(v.get('harness_lag_p95_ms'), 0)}/{_f(v.get('harness_lag_max_ms'), 0)}" for k, v in lags)
                )
            if "setup_s" in rush:
                lines.append(f"   ({rush['learners']} learners set up in {rush['setup_s']} s, added by their teachers with !class add)")
    scale = results.get("scale", [])
    if scale:
        lines.append("")
        lines.append("3. Scale   rooms │ restart: ready  first reply │ RSS MB: running  restarted  peak │ round trip ms: Ako  echo  ×empty")
        for p in scale:
            lines.append(
                f"   {p['rooms']:>12} │ {_f(p['restart_to_ready_s']):>13} {_f(p['restart_to_first_reply_s']):>12} │"
                f" {_f(p['rss_running_mb']):>15} {_f(p['rss_after_mb']):>10} {_f(p['hwm_mb']):>5} │"
                f" {_f(p['median_ms']):>17} {_f(p['echo_median_ms']):>5} {_f(p['ratio_vs_empty'], 2):>7}"
            )
        if results.get("filler"):
            f = results["filler"]
            lines.append(f"   (filler rooms created with the bot's account: {f['created']} in {f['seconds']:.0f} s)")
    rem = results.get("reminders")
    if rem:
        lines.append("")
        if "skipped" in rem:
            lines.append(f"4. Reminders: skipped ({rem['skipped']})")
        else:
            lines.append(
                f"4. Reminders: {rem['count']} due in the same minute: {rem['sent_once']} sent once, {rem['missing']} missing, "
                f"{rem['duplicates']} duplicates; lateness p50 {_f(rem['lateness_p50_s'], 2)} s, p99 {_f(rem['lateness_p99_s'], 2)} s, "
                f"max {_f(rem['lateness_max_s'], 2)} s"
            )
        if rem.get("peer"):
            lines.append(f"   peer: {rem['peer']}")
    gb = results.get("gradebook")
    if gb:
        lines.append("")
        if "skipped" in gb:
            lines.append(f"5. Gradebook: skipped ({gb['skipped']})")
        else:
            lines.append(
                f"5. Gradebook: !export grades, {gb['learners']} learners × {gb['assignments']} assignments: median {gb['median_s']:.2f} s "
                f"bot-side over {gb['runs']} runs ({gb['csv_rows']} CSV rows, {gb['csv_kb']:.0f} KB; upload not included)"
            )
    g = results.get("goals", [])
    if g:
        lines.append("")
        lines.append("Goals")
        for item in g:
            lines.append(f"   {'met ' if item['met'] else 'MISS'}  {item['goal']}: {_f(item['measured'], 2)}")
    for name, prof in (results.get("profiles") or {}).items():
        lines.append("")
        lines.append(f"Profile {name} ({prof['samples']} samples): self time")
        lines += [f"   {share:5.1f}%  {frame}" for frame, share in prof["self"][:8]]
        lines.append("   through Ako's own code (inclusive)")
        lines += [f"   {share:5.1f}%  {frame}" for frame, share in prof["own_inclusive"][:8]]
    return "\n".join(lines)


def chart(results: dict, path: Path) -> str | None:
    """The scaling curve as a PNG; None (with the reason logged by the caller) without matplotlib."""
    scale = results.get("scale", [])
    if len(scale) < 2:
        return "fewer than two scale points"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"
    rooms = [p["rooms"] for p in scale]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(rooms, [p["restart_to_first_reply_s"] for p in scale], "o-", label="first reply")
    axes[0].plot(rooms, [p["restart_to_ready_s"] for p in scale], "s--", label="ready")
    axes[0].axhline(GOALS["restart_s"], color="red", lw=0.8, ls=":", label="goal")
    axes[0].set(title="Restart (s)", xlabel="rooms")
    axes[1].plot(rooms, [p["rss_running_mb"] for p in scale], "o-", label="running")
    axes[1].plot(rooms, [p["rss_after_mb"] for p in scale], "s--", label="after restart")
    axes[1].plot(rooms, [p["hwm_mb"] for p in scale], "^:", label="peak")
    axes[1].axhline(GOALS["memory_mb"], color="red", lw=0.8, ls=":", label="goal")
    axes[1].set(title="Ako resident memory (MB)", xlabel="rooms")
    axes[2].plot(rooms, [p["median_ms"] for p in scale], "o-", label="Ako !" + str(results.get("commands", {}).get("read", "")).lstrip("!"))
    axes[2].plot(rooms, [p["echo_median_ms"] for p in scale], "s--", label="echo !ping")
    axes[2].set(title="Round trip median (ms)", xlabel="rooms")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Ako at scale — {results.get('date')} ({results.get('mode')})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
