"""docs/security.md, written from passing test runs (issue 6 "Publish the figures", issue 14).

Each test module that measures something records a section: the unit suite (the authorisation
matrix, hostile input, the invite flood) and tests/e2e/test_trust.py (spoofing, privacy probes, the
outbox scan, forgetting, blocking). The figures of every section are kept in the document itself
(a JSON comment at its end), so a run of one suite rewrites its own sections and keeps the others
with the date and commit they were measured on. A section is written only when the tests that
measured it passed (tests/figures.py). Nothing here is edited by hand.

    AKO_SECURITY_DOC=docs/security.md python -m pytest tests/unit tests/e2e/test_trust.py tests/e2e/test_private_failures.py
"""

from __future__ import annotations

from tests import figures

ENV = "AKO_SECURITY_DOC"


def record(section: str, data: dict, module_file: str) -> None:
    """Keep one section's figures; written into the document named by AKO_SECURITY_DOC (if any) at
    the end of the run, and only if the tests of ``module_file`` passed (tests/figures.py)."""
    figures.record(ENV, section, data, module_file)


def _rows(pairs) -> list[str]:
    return ["| what | figure |", "|---|---|", *[f"| {k} | {v} |" for k, v in pairs]]


def render(data: dict) -> str:
    out = [
        "# Security figures",
        "",
        "Written by the test suite (`AKO_SECURITY_DOC=docs/security.md python -m pytest tests/unit tests/e2e/test_trust.py",
        "tests/e2e/test_private_failures.py`); not edited by hand. Each section is written only from a run in which its",
        "tests passed, and says when and on which commit it was measured. SPEC §1 (who may do what) and §4 (privacy,",
        "safe output) are the contract; issue 6 is the plan these tests follow.",
        "",
    ]
    m = data.get("matrix")
    if m:
        out += [
            "## Authorisation matrix",
            "",
            f"Every command × every role × every room kind, expected answers from a table written by hand from the spec "
            f"(tests/authorisation_table.py), the declarations and the dispatcher the bot uses checked against it "
            f"(tests/unit/test_authorisation_matrix.py). {figures.stamp(m)}.",
            "",
            *_rows([
                ("commands", m["commands"]),
                ("roles", ", ".join(m["roles"])),
                ("room kinds", ", ".join(m["rooms"])),
                ("cells tested", m["cells"]),
                ("allowed as expected", m["allowed"]),
                ("refused as expected (a polite sentence, under 300 characters)", m["refused"]),
                ("**unexpected allows**", f"**{m['unexpected_allows']}**"),
                ("unexpected refusals", m["unexpected_refusals"]),
                ("crashes (Outcome.BUG)", m["bugs"]),
            ]),
            "",
        ]
    h = data.get("hostile")
    if h:
        out += [
            "## Hostile input",
            "",
            "Property tests (hypothesis; tests/unit/test_hostile_input.py) over the tokenizer, the converters, the",
            "dispatcher's parse path, the bot's event handling (`command_text`, reply fallbacks) and markdown → HTML:",
            "64 KiB bodies, NUL and control characters, zero-width and right-to-left characters, Cyrillic lookalikes,",
            "nesting 500 deep, the inputs that make markdown parsers quadratic, forged reply fallbacks, "
            f"{h['xss_payloads']} XSS payloads. {figures.stamp(h)}.",
            "",
            *_rows([
                ("inputs tried", h["tried"]),
                *[(f"examples: {k}", v) for k, v in sorted(h["examples"].items())],
                ("commands run through the dispatcher", h["dispatched"]),
                ("… ended DONE / refused / user error", f"{h['outcomes'].get('done', 0)} / {h['outcomes'].get('refused', 0)} / {h['outcomes'].get('user error', 0)}"),
                ("**crashes (Outcome.BUG or an exception)**", f"**{h['crashes']}**"),
                ("**HTML outside Matrix's allowed tags and attributes**", f"**{h['html_problems']}**"),
                ("**`javascript:` / `data:` links**", f"**{h['bad_links']}**"),
                ("**quoted commands (forged reply fallbacks) run**", f"**{h['forged_run']}**"),
                ("lookalike / invisible-character user ids refused", h["lookalikes_refused"]),
                ("`@room` set by a command learners may run", h["room_mentions"]),
                ("slowest example (s)", h["slowest_s"]),
                ("time budget per example / per event rendered", "2 s / 1 s"),
            ]),
            "",
            "Found and fixed by these tests: Python-Markdown took 40 s on 20,000 `[` and overflowed the stack on",
            "lists 500 deep (replaced by markdown-it-py, linear, nesting capped; text with over 2,000 brackets is",
            "shown as plain text); escaping made 20,000 `&` an 100 KB event the server refuses (the HTML is now",
            "dropped when an event would pass the limit, and splitting counts JSON-escaped bytes); `in 99999999999 days`",
            "and `99999999999w` crashed with OverflowError; a refusal echoed a 64 KiB paste back (echoes now stop",
            "at 80 characters); `!grades`/`!submissions` answered in any room recorded as a direct message, even one",
            "another user owns and shares (now only in the caller's own).",
            "",
        ]
    f = data.get("flood")
    if f:
        out += [
            "## Invite flood (unit, the bot's invite policy)",
            "",
            f"{figures.stamp(f)}: {f['invites']} invites from users of an unregistered "
            f"server (half marked direct, a third with stripped state claiming to be a class room) → **{f['joins']} joins**, "
            f"{f['rejected']} rejected once each, handled in {f['seconds']} s, peak traced memory {f['peak_mib']} MiB. "
            f"The server-ACL rule held in {f.get('acl_examples', 0)} generated clusters.",
            "",
        ]
    e = data.get("e2e")
    if e:
        out += [
            "## Against real homeservers (tests/e2e/test_trust.py)",
            "",
            f"{figures.stamp(e)}: the bot as a process on server A; B a registered school; C a server of no "
            f"school; D a rogue server on another host name ({e.get('d_server', 'D')}).",
            "",
            "### The authorisation matrix over Matrix",
            "",
            *_rows(e.get("matrix_live", {}).items()),
            "",
            "### Spoofing",
            "",
            *_rows(e["spoofing"].items()),
            "",
            "### Privacy probes",
            "",
            *_rows(e["privacy"].items()),
            "",
            "### Everything the bot sent",
            "",
            "Every message event the bot sent in the run, read from its outbox table, searched for every submission",
            "text, grade and feedback it holds: each may appear only in the owner's work room, the class's staff room,",
            "and the direct messages with the bot of the owner, the class's teachers and operators. Exports are files",
            "sent only to the requester's direct message (the events carry the file name, not the contents).",
            "",
            *_rows(e["scan"].items()),
            "",
            "### Right to be forgotten",
            "",
            *_rows(e["forget"].items()),
            "",
            "### Rogue servers",
            "",
            *_rows(e["rogue"].items()),
            "",
        ]
    p = data.get("private_failures")
    if p:
        out += [
            "## Private commands refused in public (tests/e2e/test_private_failures.py)",
            "",
            f"{figures.stamp(p)}, over real Matrix (issue 16, items 1 and 2). `!submit`, `!grade` and `!return` are",
            "private by content: typed where learners read them they are taken out of the room whatever becomes of",
            "them, and the receipt or refusal goes to the work room, the staff room or the caller's direct message.",
            "A room counts as someone's direct message with Ako only while it holds just the two of them.",
            "",
            *_rows((k, v) for k, v in p.items() if k not in ("measured", "commit", "by")),
            "",
        ]
    out += LIMITS
    return "\n".join(out)


LIMITS = """## Limits a school must know

- **A homeserver can act as its own users.** Ako trusts nobody's display name, avatar, power level, room
  name or invite contents: authority comes only from its records, keyed by full Matrix id. But a school's
  server can log in as (or forge events from) any account on it: a compromised server can run its own
  teachers' and learners' commands, read the rooms its users are in, and join its users' work rooms. A
  registered school's server is trusted with its own accounts, and nothing more.
- **Server ACLs need every server to honour them.** `!school block` writes `m.room.server_acl` into every
  room of every class; servers that follow the spec then refuse the blocked server's events. A server that
  ignores ACLs (or an old one) can still accept them; Ako also removes the server's users, declines its
  invites and refuses its users' commands, which holds whatever other servers do. ACLs compare host names
  without ports: a blocked server on the same host name as Ako's own server or a school's (two servers on
  one machine) cannot be denied by ACL, and `!school block` says so.
- **What federation cannot delete.** `!forget` deletes Ako's records and redacts its own events about the
  learner (and the learner's submissions in their work rooms). Every server in a room keeps its own copy of
  the room's events; a redaction asks them to remove the content and spec-following servers do, but Ako
  cannot check or force it. A redacted event keeps its skeleton (sender, time, type, room, relations).
  Uploaded files stay in their server's media store: only the uploader's server can delete them. The
  learner's own account, messages outside their work rooms, and Ako's log file are not touched.
- **Encryption protects content in transit and at rest on servers, not from the people in the room:**
  teachers (and their servers) can read a learner's work room, by design.""".splitlines()


figures.register(ENV, render)


def record_unit_suite() -> None:
    """At the end of a unit run: the sections whose modules ran (tests/unit/conftest.py calls this)."""
    import sys

    matrix = sys.modules.get("tests.unit.test_authorisation_matrix")
    if matrix is not None and getattr(matrix, "RESULTS", None):
        from commands.dispatch import Outcome

        results = matrix.RESULTS.values()
        record("matrix", {
            "commands": len({k[0] for k in matrix.RESULTS}),
            "roles": list(matrix.ROLES),
            "rooms": list(matrix.ROOM_KINDS),
            "cells": len(matrix.RESULTS),
            "allowed": sum(1 for exp, out, _ in results if exp and out is not Outcome.REFUSED),
            "refused": sum(1 for exp, out, _ in results if not exp and out is Outcome.REFUSED),
            "unexpected_allows": sum(1 for exp, out, _ in results if not exp and out is not Outcome.REFUSED),
            "unexpected_refusals": sum(1 for exp, out, _ in results if exp and out is Outcome.REFUSED),
            "bugs": sum(1 for _, out, _ in results if out is Outcome.BUG),
        }, matrix.__file__)
    hostile = sys.modules.get("tests.unit.test_hostile_input")
    if hostile is not None and hostile.FIGURES:
        f = hostile.FIGURES
        examples = {k.split(":", 1)[1]: v for k, v in f.items() if k.startswith("examples:")}
        outcomes = {k.split(":", 1)[1]: v for k, v in f.items() if k.startswith("outcome:")}
        record("hostile", {
            "tried": sum(examples.values()) + f["xss payloads"] + f["refused:lookalike ids"],
            "examples": examples,
            "dispatched": sum(outcomes.values()),
            "outcomes": outcomes,
            "crashes": f["crashes"],
            "html_problems": f["html problems"],
            "bad_links": f["bad links"],
            "forged_run": f["forged fallbacks run as commands"],
            "lookalikes_refused": f["refused:lookalike ids"] + examples.get("lookalike ids", 0),
            "room_mentions": f["room mentions outside teacher commands"],
            "xss_payloads": f["xss payloads"],
            "slowest_s": round(max(hostile.SLOWEST.values(), default=0.0), 3),
        }, hostile.__file__)
    blocking = sys.modules.get("tests.unit.test_blocking")
    if blocking is not None and "flood" in blocking.FIGURES:
        record("flood", {**blocking.FIGURES["flood"], "acl_examples": blocking.FIGURES.get("acl property examples", 0)}, blocking.__file__)
