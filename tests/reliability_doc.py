"""docs/reliability.md, written from passing test runs (SPEC §4: nothing lost, nothing twice).

Four modules measure it, each its own section: tests/e2e/test_reliability.py (kills at each
injection point, commands sent while the bot is down, the homeserver down, SQLite under SIGKILL),
tests/e2e/test_clock.py (reminders and the scheduler across kills and restarts),
tests/e2e/test_faults.py (a proxy that hangs or fails requests) and tests/e2e/test_rate_limits.py
(a class handing in at once under Synapse's default rate limit).
A section is written only when its module's tests passed, with the date and commit it was
measured on (tests/figures.py). Nothing here is edited by hand.

    AKO_RELIABILITY_DOC=docs/reliability.md python -m pytest tests/e2e
"""

from __future__ import annotations

from tests import figures

ENV = "AKO_RELIABILITY_DOC"


def record(section: str, data: dict, module_file: str) -> None:
    figures.record(ENV, section, data, module_file)


def render(data: dict) -> str:
    lines = [
        "# Reliability figures",
        "",
        "Written by the test suite (`AKO_RELIABILITY_DOC=docs/reliability.md python -m pytest tests/e2e`), each section",
        "only from a run in which the tests that measured it passed, and saying when and on which commit. Not edited by hand.",
        "",
    ]
    rel = data.get("reliability")
    if rel:
        lines += [
            "## The bot killed at each injection point (tests/e2e/test_reliability.py)",
            "",
            f"{figures.stamp(rel)}.",
            "",
            "| command | point | exit |",
            "|---|---|---|",
            *[f"| `{k['command']}` | {k['point']} | {k['exit']} |" for k in rel.get("kills", [])],
            "",
            f"Restarts survived in this module: {rel.get('restarts', 0)}.",
            "",
            "| point | submissions recorded | receipts | grades recorded | grade notices |",
            "|---|---|---|---|---|",
            *[f"| {c['point']} | {c['submissions']} | {c['receipts']} | {c['grades']} | {c['grade_notices']} |" for c in rel.get("crash_checks", [])],
            "",
        ]
        if "downtime" in rel:
            d = rel["downtime"]
            lines += [
                "### Commands sent while the bot was down",
                "",
                f"- sent by 10 learners (5 on each of two servers) across 10 work rooms: {d['sent_while_down']}",
                f"- recorded after restart: {d['recorded']}; duplicates: {d['duplicates']}; lost: {d['sent_while_down'] - d['recorded']}",
                f"- receipts sent: {d['receipts']} (duplicates: {d['receipt_duplicates']}); all recorded {d['seconds_to_catch_up']} s after the restart",
                "",
            ]
        if "outage" in rel:
            o = rel["outage"]
            lines += [
                "### The bot's homeserver down for 30 s",
                "",
                f"- sync retries logged while down: {o['sync_retries_logged']} (exponential back-off, 1 s → 15 s)",
                f"- commands answered {o['seconds_to_recover']} s after the server came back; lost: {o['lost']}; duplicates: {o['duplicates']}",
                "",
            ]
        if "sqlite" in rel:
            s = rel["sqlite"]
            lines += [
                "### SQLite under SIGKILL",
                "",
                f"- kill cycles during writes: {s['kill_cycles']}; acknowledged transactions: {s['acknowledged']}; missing: {s['missing']}",
                f"- `PRAGMA integrity_check`: {s['integrity']}; half-applied transactions: {s['half_transactions']}",
                "- journal: WAL, `synchronous=FULL`",
                "",
            ]
    clock = data.get("clock")
    if clock:
        lines += ["## Reminders and the scheduler across kills (tests/e2e/test_clock.py)", "", f"{figures.stamp(clock)}.", ""]
        if clock.get("reminder_checks"):
            lines += [
                "A `!remindme` due 3 s after it was set, the bot killed at each point of its sending "
                "(`reminder-due`: inside its transaction; `reminder-committed`: after the commit; `sent`: accepted by "
                "the homeserver, not yet marked), then started again:",
                "",
                "| point | exit | reminders that arrived |",
                "|---|---|---|",
                *[f"| {c['point']} | {c.get('exit', '')} | {c['reminders']} |" for c in clock["reminder_checks"]],
                "",
            ]
        if "clock_restarts" in clock:
            r = clock["clock_restarts"]
            lines += [
                f"The scheduler over {r['restarts']} restarts ({r['kills']} of them SIGKILL) in {r['seconds']} s, with two "
                f"reminders and a digest waiting: scheduler jobs after each start {r['jobs after each']}; the reminder due "
                "after them arrived once.",
                "",
            ]
    f = data.get("faults")
    if f:
        lines += [
            "## Faults injected between Ako and its homeserver (tests/e2e/test_faults.py)",
            "",
            f"{figures.stamp(f)}.",
            "",
            "A second Ako reaches school A's homeserver through a proxy on loopback that holds chosen requests "
            "unanswered or answers them with a 502 page (no Matrix error code), and is killed at crash points inside "
            "its sync loop:",
            "",
            f"- requests held unanswered (a join that hangs): {f['hangs']}",
            f"- requests answered 502 (sends for 30 s, gap fills): {f['502s']}",
            f"- crash points (SIGKILL, then a restart): {', '.join(f['crash points']) or 'none'}",
            f"- commands sent: {f['commands']}; answered exactly once: {f['answered once']}; dropped: {f['dropped']}",
        ]
        if "undeliverable" in f:
            lines.append(f"- replies to a room Ako was removed from: {f['undeliverable']} kept as undeliverable with the server's reason, "
                         "logged and listed by `ako check`; the queue went on")
        if "flood" in f:
            lines.append(f"- a flood of {f['flood']['sent']} failing commands from one user: {f['flood']['answered']} answers "
                         f"(one saying it will ignore them); another user's command answered in {f['flood']['other_s']} s meanwhile")
        lines.append("")
    r = data.get("rate_limits")
    if r:
        lines += [
            "## A class handing in at once, under Synapse's default message rate limit (tests/e2e/test_rate_limits.py)",
            "",
            f"{figures.stamp(r)}.",
            "",
            f"- the bot's homeserver: Synapse with its default `rc_message` ({r['limit']})",
            f"- {r['learners']} learners on two other servers sent `!submit` at once, 5 of them twice and {r['in_class']} in the "
            f"class room: {r['replies']} receipts due, and {r['in_class']} redactions",
            f"- `!submit`s taken out of the class room (redacted, through the outbox): {r['redacted']} of {r['in_class']}",
            f"- all {r['replies']} submissions recorded {r['recorded_s']} s after the burst (the sync loop kept reading while sends waited)",
            f"- receipts delivered: {r['delivered']} of {r['replies']}, duplicates 0, the last {r['delivered_s']} s after the burst",
            f"- sends refused with 429: {r['refused']}, each waited out as the server asked (`retry_after_ms`, {r['waited_s']} s in all)",
            f"- rooms with two replies that got them in order: {r['rooms_in_order']} of 5",
            "",
        ]
    return "\n".join(lines)


figures.register(ENV, render)
