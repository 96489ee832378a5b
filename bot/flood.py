"""A flood of commands Ako cannot act on, from one person, is answered once and then ignored for a
while: anyone in a room with Ako could otherwise fill the outbox with error replies and delay
every class's receipts.

Only failures count (a refusal, a bad argument, a bug): a class handing in at once, or a learner's
twenty drafts read after a restart, are never held back.
"""

from __future__ import annotations

from collections import deque

# Generous on purpose: a teacher trying lookalike ids, or a learner trying every command, fails
# dozens of times a minute; a script flooding Ako fails thousands of times. (One room's burst
# cannot starve another's receipts anyway: the outbox's rooms take turns.)
LIMIT = 100  # failed commands within WINDOW seconds …
WINDOW = 60.0
QUIET = 60.0  # … and the sender's commands are ignored for this long


class FloodGate:
    def __init__(self, limit: int = LIMIT, window: float = WINDOW, quiet: float = QUIET):
        self.limit, self.window, self.quiet = limit, window, quiet
        self._failures: dict[str, deque[float]] = {}
        self._quiet_until: dict[str, float] = {}

    def ignoring(self, sender: str, now: float) -> bool:
        """Whether the sender's commands are being ignored just now."""
        until = self._quiet_until.get(sender)
        if until is None:
            return False
        if now >= until:
            del self._quiet_until[sender]
            return False
        return True

    def failed(self, sender: str, now: float) -> bool:
        """Count a command that could not be acted on; True exactly when this one starts a quiet
        spell (the moment to say so, once)."""
        times = self._failures.setdefault(sender, deque())
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            times.clear()
            self._quiet_until[sender] = now + self.quiet
            return True
        if len(self._failures) > 10_000:  # forget the calm ones, so the table stays small
            for user in [u for u, t in self._failures.items() if not t or t[-1] <= now - self.window]:
                del self._failures[user]
        return False


def flood_notice(gate: FloodGate, prefix: str) -> str:
    return (
        f"That is {gate.limit} commands in {gate.window:.0f} s that I could not act on. I'll ignore your commands for "
        f"{gate.quiet:.0f} s so that everyone else's are answered; `{prefix}help` lists what you can do here."
    )
