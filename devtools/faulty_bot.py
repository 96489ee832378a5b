"""Ako with faults injected, for the crash-consistency and containment tests:

    python -m devtools.faulty_bot [--crash-at POINT[:N]] [--fail-command NAME] run --config ako.toml

``--crash-at`` kills the process with SIGKILL the N-th time (default the 1st) it reaches the named
fault point (bot/fault_points.py lists them); ``--fail-command`` makes that command's handler raise,
to prove a bug stays contained. The rest of the command line is ``ako``'s own.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import commands
from bot import cli, fault_points


def crash_at(point: str, nth: int = 1):
    """A fault-point hook that kills the process the ``nth`` time it reaches ``point``."""
    if point not in fault_points.POINTS:
        raise ValueError(f"no fault point {point!r}; there are {', '.join(fault_points.POINTS)}")
    hits = 0

    def hook(name: str) -> None:
        nonlocal hits
        if name != point:
            return
        hits += 1
        if hits >= nth:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def fail_command(name: str) -> None:
    """Make the named command's handler raise whenever it runs."""
    registry = commands.load()  # the registry Ako will load: it is made once, when commands are declared
    cmd = registry.find(name)
    if cmd is None:
        raise ValueError(f"no command {name!r}")

    async def failing(ctx, **kwargs):
        raise RuntimeError(f"injected failure in {name}")

    registry.replace_handler(cmd.name, failing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.faulty_bot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--crash-at", metavar="POINT[:N]", help="SIGKILL at the N-th time the point is reached")
    parser.add_argument("--fail-command", metavar="NAME", help="that command's handler raises")
    args, rest = parser.parse_known_args(argv)
    if args.crash_at:
        point, _, nth = args.crash_at.partition(":")
        fault_points.install(crash_at(point, int(nth or 1)))
    if args.fail_command:
        fail_command(args.fail_command)
    return cli.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
