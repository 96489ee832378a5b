"""The `ako` command: run, check, dev."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from . import config as config_mod



def _unreachable(cfg, e: BaseException) -> str:
    """The sentence for a homeserver Ako cannot talk to, named by its config key."""
    return f"matrix.homeserver: cannot reach {cfg.matrix.homeserver}: {type(e).__name__}: {e}"

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
            print(_unreachable(cfg, e))
            return 1
        finally:
            await client.close()

    code = asyncio.run(reach())
    _report_undeliverable(cfg.bot.data_dir / "ako.db")
    return code


def _report_undeliverable(path: Path) -> None:
    """Messages the homeserver said can never arrive (the room is gone, Ako is not in it): the
    outbox keeps them with the reason; the operator hears of them here and in the log. Read-only:
    a check changes nothing, not even the schema."""
    import sqlite3

    from storage.outbox import UNDELIVERABLE_COUNT, UNDELIVERABLE_NEWEST, Undeliverable

    if not path.exists():
        return
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        count = con.execute(UNDELIVERABLE_COUNT).fetchone()[0]
        newest = [Undeliverable(*r) for r in con.execute(UNDELIVERABLE_NEWEST, (10,))]
    except sqlite3.Error as e:
        print(f"Outbox: could not read {path}: {e}")
        return
    finally:
        con.close()
    if not count:
        print("Outbox: every message was delivered or is still being tried.")
        return
    print(f"Outbox: {count} message{'s' if count != 1 else ''} could not be delivered (newest first):")
    for u in newest:
        print(f"  {u.given_up_at}  {u.room_id}  {u.event_type}: {u.reason}")


def _saved_device(cfg) -> str | None:
    """The bot's own device, from data_dir/session.json (written at its first login)."""
    import json

    path = cfg.bot.data_dir / "session.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return raw.get("device_id") if raw.get("user_id") == cfg.matrix.user_id else None


async def _as_account(cfg, purpose: str, act, errors: tuple[type[Exception], ...]) -> int:
    """Run ``act(client)`` as Ako's account for a one-off admin command: with the access token, or a
    password login on a device of its own that is logged out afterwards. Errors become sentences."""
    import nio

    client = nio.AsyncClient(cfg.matrix.homeserver, cfg.matrix.user_id)
    own_device = False
    try:
        if cfg.matrix.access_token:
            client.user_id, client.access_token = cfg.matrix.user_id, cfg.matrix.access_token
        else:
            resp = await client.login(cfg.matrix.password, device_name=f"{cfg.matrix.device_name}-{purpose}")
            if isinstance(resp, nio.ErrorResponse):
                print(f"Could not log in as {cfg.matrix.user_id}: {resp.message}", file=sys.stderr)
                return 1
            own_device = True
        return await act(client)
    except errors as e:
        print(e, file=sys.stderr)
        return 1
    except (OSError, asyncio.TimeoutError) as e:
        print(_unreachable(cfg, e), file=sys.stderr)
        return 1
    finally:
        if own_device:
            await client.logout()
        await client.close()


def cmd_identity_reset(args) -> int:
    """Publish a new cross-signing identity for Ako in place of what the homeserver holds."""
    cfg = _load(args.config)
    if cfg is None:
        return 2
    from . import identity

    async def reset(client) -> int:
        if cfg.matrix.access_token:
            client.device_id = _saved_device(cfg)  # the token's device is Ako's: sign it too
        ours = await identity.reset(client, cfg.bot.data_dir, cfg.matrix.password)
        print(f"Published a new identity for {cfg.matrix.user_id}: master key {identity.fingerprint(ours.master_public)}.")
        print("Start (or restart) Ako: it signs its device with it. Users' clients will say that Ako's identity changed.")
        return 0

    return asyncio.run(_as_account(cfg, "identity-reset", reset, (identity.IdentityError,)))


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


def cmd_export(args) -> int:
    """Every record in the database as canonical JSON, to stdout or a file."""
    from storage import export

    if not args.all:
        print("Say what to export: `ako export --all --config …` (every record; the only export so far).", file=sys.stderr)
        return 2
    cfg = _load(args.config)
    if cfg is None:
        return 2
    try:
        data = export.export_all(cfg.bot.data_dir / "ako.db", pretty=args.pretty)
    except export.ExportError as e:
        print(e, file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"Exported every record to {args.output} ({len(data):,} bytes).", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


async def _restore(cfg, recovery_text: str) -> int:
    """Restore Ako's identity and room keys onto a new device in an empty data folder. Everything is read
    and checked through a short-lived login first, so a wrong key or a broken backup writes nothing."""
    import nio

    from . import identity, recovery, secret_storage
    from .key_backup import KeyBackupError
    from .runtime import Ako

    data_dir = cfg.bot.data_dir
    if not cfg.bot.encryption:
        print("bot.encryption is false: there are no room keys or identity to restore.", file=sys.stderr)
        return 1
    if not cfg.matrix.password:
        print(
            "A restore logs Ako in as a new device, which needs the account's password: put it in matrix.password "
            "(an access token belongs to a device that no longer has its keys).",
            file=sys.stderr,
        )
        return 1
    blocking = recovery.in_the_way(data_dir)
    if blocking:
        print(
            "The data folder already holds a device or an identity, which a restore would replace: "
            + ", ".join(str(p) for p in blocking) + ". Restore into an empty data folder (move these away first).",
            file=sys.stderr,
        )
        return 1
    try:
        key = secret_storage.decode_recovery_key(recovery_text)
    except secret_storage.RecoveryKeyError as e:
        print(e, file=sys.stderr)
        return 1
    reader = nio.AsyncClient(cfg.matrix.homeserver, cfg.matrix.user_id)
    logged_in = False
    try:
        resp = await reader.login(cfg.matrix.password, device_name=f"{cfg.matrix.device_name}-restore")
        if isinstance(resp, nio.ErrorResponse):
            print(f"Could not log in as {cfg.matrix.user_id}: {resp.message}", file=sys.stderr)
            return 1
        logged_in = True
        print(f"Reading the secret storage and key backup of {cfg.matrix.user_id}…", file=sys.stderr)
        restored = await recovery.read_backup(reader, key)
    except (secret_storage.RecoveryKeyError, secret_storage.SecretStorageError, KeyBackupError, identity.IdentityError) as e:
        text = str(e)
        print(text if "Nothing was written" in text else f"{text} Nothing was written.", file=sys.stderr)
        return 1
    except (OSError, asyncio.TimeoutError) as e:
        print(f"{_unreachable(cfg, e)}. Nothing was written.", file=sys.stderr)
        return 1
    finally:
        if logged_in:
            await reader.logout()
        await reader.close()

    data_dir.mkdir(parents=True, exist_ok=True)
    identity.save(data_dir, restored.identity)
    try:
        client = await Ako(cfg).login()  # a new device, with its crypto store in data_dir/crypto
    except RuntimeError as e:
        print(f"{e}. The identity is restored in {identity.identity_file(data_dir)}; run the restore again.", file=sys.stderr)
        return 1
    try:
        added = recovery.import_sessions(client, restored.sessions)
        await recovery.learn_encrypted_rooms(client, restored)
        recovery.remember_restored(data_dir, restored)
        if client.should_upload_keys:
            await client.keys_upload()
        status = await identity.ensure(client, data_dir, cfg.matrix.password)
    except (KeyBackupError, identity.IdentityError, OSError, asyncio.TimeoutError) as e:
        print(
            f"The restore stopped half way: {e}. Move the data folder's contents away and run it again.", file=sys.stderr
        )
        return 1
    finally:
        await client.close()
    print(f"Restored Ako's identity for {cfg.matrix.user_id}: master key {identity.fingerprint(restored.identity.master_public)}.")
    print(f"Restored {added} room key(s) from key backup version {restored.version} into the new device {client.device_id}"
          + (f"; {restored.unreadable} could not be read." if restored.unreadable else "."))
    if not status.device_signed:
        print(f"The new device is not signed yet: {status.problem}")
    return 0


def cmd_restore_keys(args) -> int:
    """Ako's identity and room keys from secret storage and the key backup, onto a new device."""
    cfg = _load(args.config)
    if cfg is None:
        return 2
    _logging("WARNING")
    code = asyncio.run(_restore(cfg, args.recovery_key))
    if code == 0:
        print("Start Ako (`ako run --config …`): it reads the encrypted rooms' history with the restored keys.")
    return code


def cmd_recovery_key_new(args) -> int:
    """A new recovery key (the old one lost, or Ako's identity reset): new secret storage and key backup."""
    cfg = _load(args.config)
    if cfg is None:
        return 2
    from . import identity, recovery, secret_storage
    from .key_backup import KeyBackupError

    async def renew(client) -> int:
        uploaded = await recovery.new_recovery_key(client, cfg.bot.data_dir)
        print(f"New recovery key above (also in {recovery.recovery_file(cfg.bot.data_dir)}: move it offline, then delete the file). "
              f"New key backup version {uploaded.version}. Restart Ako: it backs up the room keys its device holds into it.")
        return 0

    _logging("ERROR")
    return asyncio.run(_as_account(cfg, "recovery", renew, (identity.IdentityError, secret_storage.SecretStorageError, KeyBackupError)))


def cmd_rebuild(args) -> int:
    """On an empty data folder: identity and room keys back, then the database from the records in the rooms."""
    cfg = _load(args.config)
    if cfg is None:
        return 2
    data_dir = cfg.bot.data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        print(f"{data_dir} (bot.data_dir) is not empty: a rebuild starts from an empty data folder and never replaces "
              "what is there. Move its contents away first.", file=sys.stderr)
        return 1
    _logging("WARNING")
    code = asyncio.run(_restore(cfg, args.recovery_key))
    if code != 0:
        return code
    from . import rebuild

    database = data_dir / "ako.db"
    print(f"Walking the rooms {cfg.matrix.user_id} is in…", file=sys.stderr)
    try:
        done = asyncio.run(rebuild.run(cfg.matrix.homeserver, data_dir, lambda line: print(line, file=sys.stderr)))
    except (rebuild.RebuildError, RuntimeError, OSError, asyncio.TimeoutError) as e:
        text = str(e) if isinstance(e, rebuild.RebuildError) else f"Walking the rooms failed: {type(e).__name__}: {e}"
        print(f"{text} No database was written. The identity and room keys are restored in {data_dir}; move its contents "
              "away and run `ako rebuild` again, or start Ako on a database from `ako backup` copied to "
              f"{database}.", file=sys.stderr)
        return 1
    print(rebuild.report(done, database))
    print("Start Ako (`ako run --config …`): it runs on the rebuilt database as before.")
    return 0


def cmd_dev(args) -> int:
    from .dev import run_dev

    _logging("INFO")
    return run_dev(Path(args.state))


def _config_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--config", default="config.toml", help="path to the TOML config (default: config.toml)")


def _from_recovery_key(sub, name: str, func, *, help: str, description: str) -> None:
    """A command that starts from Ako's recovery key (restore-keys, rebuild)."""
    command = sub.add_parser(name, help=help, description=description)
    command.add_argument("--recovery-key", required=True, metavar="KEY", help="the recovery key, in quotes (spaces may be left out)")
    _config_option(command)
    command.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ako",
        description="Ako: shared classes across schools, on Matrix.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the bot", description="Run the bot until stopped (SIGTERM or Ctrl-C).")
    _config_option(run)
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate the config and log in, then exit", description="Validate the config, reach the homeserver and log in, then exit 0 (or explain and exit non-zero).")
    _config_option(check)
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
    _config_option(reset)
    reset.set_defaults(func=cmd_identity_reset)
    backup = sub.add_parser("backup", help="online backup of the database to a file", description="Copy the bot's SQLite database to FILE while the bot runs (SQLite backup API), then check the copy.")
    backup.add_argument("file", help="the backup file to create")
    _config_option(backup)
    backup.set_defaults(func=cmd_backup)
    exp = sub.add_parser(
        "export",
        help="every record in the database as canonical JSON",
        description="Write every record in Ako's database as canonical JSON (keys, tables and rows in a stable order), "
        "for comparing two databases and for audits. No secrets: access tokens and private keys are not in the database.",
    )
    exp.add_argument("--all", action="store_true", help="every record (required: the only export so far)")
    exp.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    exp.add_argument("--pretty", action="store_true", help="indented for reading (still sorted); canonical one-line JSON by default")
    _config_option(exp)
    exp.set_defaults(func=cmd_export)
    _from_recovery_key(
        sub, "restore-keys", cmd_restore_keys,
        help="restore Ako's identity and room keys with the recovery key",
        description="On an empty data folder: read Ako's secret storage with the recovery key Ako printed at set-up, restore its "
        "cross-signing identity (cross-signing.json) and every room key in the key backup into a new device, so Ako keeps its "
        "identity and reads the encrypted rooms' history. A wrong key writes nothing.",
    )
    rkey = sub.add_parser("recovery-key", help="Ako's recovery key", description="Ako's recovery key (see the README, Recovery).")
    rkey_sub = rkey.add_subparsers(dest="action", required=True, metavar="ACTION")
    rnew = rkey_sub.add_parser(
        "new",
        help="a new recovery key, secret storage and key backup",
        description="Set up recovery anew: a new recovery key (printed, and written to RECOVERY-KEY.txt), new secret storage "
        "holding Ako's current identity, and a new key backup. For a lost recovery key, or after `ako identity reset`. "
        "The old backup's room keys can no longer be read; Ako uploads the ones its device holds at its next start.",
    )
    _config_option(rnew)
    rnew.set_defaults(func=cmd_recovery_key_new)
    _from_recovery_key(
        sub, "rebuild", cmd_rebuild,
        help="a new Ako from the rooms and the recovery key: identity, room keys and every record",
        description="On an empty data folder: restore identity and room keys as restore-keys does, walk every room Ako is in "
        "(state and whole history, decrypted), and recreate the database from the records Ako wrote there, in one go. "
        "A wrong recovery key writes nothing.",
    )
    dev = sub.add_parser("dev", help="two local federated homeservers, the bot and demo accounts", description="Start two federated Synapse homeservers on loopback, register demo accounts, run the bot with an example class, and print how to log in. Ctrl-C stops everything.")
    dev.add_argument("--state", default=".ako-dev", help="folder for all dev state (default: .ako-dev)")
    dev.set_defaults(func=cmd_dev)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
