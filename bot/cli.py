"""The `ako` command: run, check, dev."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from . import config as config_mod


def _logging(level: str, logfile: Path | None = None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile is not None:
        handlers.append(logging.FileHandler(logfile, encoding="utf-8"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=handlers,
        force=True,
    )
    for noisy in ("nio", "aiohttp", "peewee"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(path: str) -> config_mod.Config | None:
    try:
        return config_mod.load(Path(path))
    except config_mod.ConfigError as e:
        print(e, file=sys.stderr)
        return None


def cmd_run(args) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    cfg.bot.data_dir.mkdir(parents=True, exist_ok=True)
    _logging(cfg.bot.log_level)
    from .runtime import Ako

    async def main() -> None:
        ako = Ako(cfg)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, ako.stop)
        await ako.run()

    try:
        asyncio.run(main())
    except RuntimeError as e:  # login refused, database too new, …: a sentence, not a traceback
        logging.getLogger("ako").error("%s", e)
        return 1
    return 0


def cmd_check(args) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    print(f"Config {args.config}: valid.")
    if cfg.bot.encryption:
        from nio.crypto import ENCRYPTION_ENABLED

        if not ENCRYPTION_ENABLED:
            print("bot.encryption = true, but matrix-nio's encryption support is not installed: pip install 'matrix-nio[e2e]'.")
            return 1
        rooms = "work and staff rooms are created encrypted" if cfg.bot.encrypt_work_rooms else "work and staff rooms are created unencrypted"
        print(f"End-to-end encryption: on; crypto store in {cfg.bot.data_dir / 'crypto'} (keep it with session.json); {rooms}.")
    else:
        print("End-to-end encryption: off; Ako cannot read encrypted rooms and tells senders so.")

    async def reach() -> int:
        import nio

        client = nio.AsyncClient(cfg.matrix.homeserver, cfg.matrix.user_id)
        try:
            versions = await client.send("GET", "/_matrix/client/versions")
            if versions.status != 200:
                print(f"matrix.homeserver: {cfg.matrix.homeserver} answered {versions.status} to /_matrix/client/versions.")
                return 1
            if cfg.matrix.access_token:
                client.restore_login(cfg.matrix.user_id, "", cfg.matrix.access_token)
                resp = await client.whoami()
            else:
                resp = await client.login(cfg.matrix.password, device_name=f"{cfg.matrix.device_name}-check")
            if isinstance(resp, nio.ErrorResponse):
                print(f"Could not log in as {cfg.matrix.user_id}: {resp.message}")
                return 1
            print(f"Reached {cfg.matrix.homeserver} and logged in as {cfg.matrix.user_id}.")
            code = 0
            if cfg.bot.encryption:
                from . import identity

                try:
                    status = await identity.describe(client, cfg.bot.data_dir, _saved_device(cfg))
                    for line in status.lines(_saved_device(cfg) or "not logged in yet"):
                        print(line)
                    if status.master_public and not status.server_agrees:
                        code = 1
                except identity.IdentityError as e:
                    print(f"Cross-signing identity: {e}")
                    code = 1
            if not cfg.matrix.access_token:
                await client.logout()  # the check's own device, not the bot's
            return code
        except Exception as e:
            print(f"matrix.homeserver: cannot reach {cfg.matrix.homeserver}: {type(e).__name__}: {e}")
            return 1
        finally:
            await client.close()

    return asyncio.run(reach())


def _saved_device(cfg) -> str | None:
    """The bot's own device, from data_dir/session.json (written at its first login)."""
    import json

    path = cfg.bot.data_dir / "session.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return raw.get("device_id") if raw.get("user_id") == cfg.matrix.user_id else None


def cmd_identity_reset(args) -> int:
    """Publish a new cross-signing identity for Ako in place of what the homeserver holds."""
    cfg = _load(args.config)
    if cfg is None:
        return 2
    from . import identity

    async def reset() -> int:
        import nio

        client = nio.AsyncClient(cfg.matrix.homeserver, cfg.matrix.user_id)
        own_device = False
        try:
            if cfg.matrix.access_token:
                client.access_token = cfg.matrix.access_token
                client.device_id = _saved_device(cfg)
            else:
                resp = await client.login(cfg.matrix.password, device_name=f"{cfg.matrix.device_name}-identity-reset")
                if isinstance(resp, nio.ErrorResponse):
                    print(f"Could not log in as {cfg.matrix.user_id}: {resp.message}", file=sys.stderr)
                    return 1
                own_device = True
            ours = await identity.reset(client, cfg.bot.data_dir, cfg.matrix.password)
            print(f"Published a new identity for {cfg.matrix.user_id}: master key {identity.fingerprint(ours.master_public)}.")
            print("Start (or restart) Ako: it signs its device with it. Users' clients will say that Ako's identity changed.")
            return 0
        except identity.IdentityError as e:
            print(str(e), file=sys.stderr)
            return 1
        except (OSError, asyncio.TimeoutError) as e:
            print(f"matrix.homeserver: cannot reach {cfg.matrix.homeserver}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        finally:
            if own_device:
                await client.logout()
            await client.close()

    return asyncio.run(reset())


def cmd_backup(args) -> int:
    """An online backup through SQLite's backup API: consistent while the bot runs."""
    import sqlite3

    cfg = _load(args.config)
    if cfg is None:
        return 2
    source = cfg.bot.data_dir / "ako.db"
    if not source.exists():
        print(f"No database at {source} (bot.data_dir); nothing to back up.", file=sys.stderr)
        return 1
    target = Path(args.file)
    if target.exists():
        print(f"{target} exists; choose a new file name.", file=sys.stderr)
        return 1
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        def progress(status, remaining, pages):
            if pages:
                print(f"  {pages - remaining}/{pages} pages", file=sys.stderr)

        src.backup(dst, pages=256, progress=progress)
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        src.close()
        dst.close()
    print(f"Backed up {source} to {target} (integrity: {check}). To restore: stop Ako, copy it to {source}, start Ako.")
    return 0 if check == "ok" else 1


def cmd_dev(args) -> int:
    from .dev import run_dev

    _logging("INFO")
    return run_dev(Path(args.state))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ako",
        description="Ako: shared classes across schools, on Matrix.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the bot", description="Run the bot until stopped (SIGTERM or Ctrl-C).")
    run.add_argument("--config", default="config.toml", help="path to the TOML config (default: config.toml)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate the config and log in, then exit", description="Validate the config, reach the homeserver and log in, then exit 0 (or explain and exit non-zero).")
    check.add_argument("--config", default="config.toml", help="path to the TOML config (default: config.toml)")
    check.set_defaults(func=cmd_check)
    ident = sub.add_parser("identity", help="Ako's cross-signing identity", description="Ako's cross-signing identity (see the README, End-to-end encryption).")
    ident_sub = ident.add_subparsers(dest="action", required=True, metavar="ACTION")
    reset = ident_sub.add_parser(
        "reset",
        help="publish a new identity for Ako in place of the homeserver's",
        description="Publish a new cross-signing identity for Ako in place of the one the homeserver holds (after someone reset "
        "it, or the kept one was lost), and sign Ako's device with it. The old one is kept as cross-signing.json.replaced. "
        "Needs matrix.password (the homeserver asks for it). Every user's client will say that Ako's identity changed.",
    )
    reset.add_argument("--config", default="config.toml", help="path to the TOML config (default: config.toml)")
    reset.set_defaults(func=cmd_identity_reset)
    backup = sub.add_parser("backup", help="online backup of the database to a file", description="Copy the bot's SQLite database to FILE while the bot runs (SQLite backup API), then check the copy.")
    backup.add_argument("file", help="the backup file to create")
    backup.add_argument("--config", default="config.toml", help="path to the TOML config (default: config.toml)")
    backup.set_defaults(func=cmd_backup)
    dev = sub.add_parser("dev", help="two local federated homeservers, the bot and demo accounts", description="Start two federated Synapse homeservers on loopback, register demo accounts, run the bot with an example class, and print how to log in. Ctrl-C stops everything.")
    dev.add_argument("--state", default=".ako-dev", help="folder for all dev state (default: .ako-dev)")
    dev.set_defaults(func=cmd_dev)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
