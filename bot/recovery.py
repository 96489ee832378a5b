"""Recovery: what lets a new Ako on an empty data folder keep its identity and read its encrypted rooms.

At its first start with encryption, Ako sets recovery up once: a recovery key for the operator
(printed once, and written to data_dir/RECOVERY-KEY.txt for them to move offline), secret storage
under it holding Ako's three cross-signing keys and the key backup's private key, and a key backup
that every room key of Ako's device goes into, after each sync. ``ako restore-keys`` (and the start
of ``ako rebuild``) reverses it on an empty data folder with the recovery key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import nio
from signedjson.key import decode_signing_key_base64, encode_signing_key_base64

from . import identity as identity_mod
from . import key_backup, secret_storage
from .identity import USAGES, Identity
from .key_backup import KeyBackupError, Uploaded
from .secret_storage import RecoveryKeyError, SecretStorage, SecretStorageError, b64, unb64

log = logging.getLogger("ako.recovery")

RECOVERY_FILE = "RECOVERY-KEY.txt"
CROSS_SIGNING_SECRET = {usage: f"m.cross_signing.{usage}" for usage in USAGES}


def recovery_file(data_dir: Path) -> Path:
    return data_dir / RECOVERY_FILE


def _write_recovery_file(data_dir: Path, user_id: str, text: str) -> None:
    path = recovery_file(data_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(
            f"Ako's recovery key for {user_id}:\n\n    {text}\n\n"
            "Keep it offline (on paper, or in the school's password safe), then delete this file.\n"
            "With it, `ako restore-keys --config … --recovery-key '…'` on an empty data folder brings back Ako's\n"
            "cross-signing identity and the keys of its encrypted rooms.\n"
        )
        f.flush()
        os.fsync(f.fileno())


def _read_recovery_file(data_dir: Path) -> bytes | None:
    """The key from a set-up that did not finish (the file is written first)."""
    try:
        text = recovery_file(data_dir).read_text()
    except FileNotFoundError:
        return None
    line = next((ln.strip() for ln in text.splitlines() if ln.startswith("    ")), "")
    try:
        return secret_storage.decode_recovery_key(line)
    except RecoveryKeyError:
        return None


def _banner(user_id: str, text: str, path: Path) -> str:
    rule = "=" * 78
    return "\n".join(
        [
            rule,
            f"RECOVERY KEY for {user_id} (shown once):",
            "",
            f"    {text}",
            "",
            "Keep it offline: on paper, or in the school's password safe. It is also in",
            f"{path} (readable by Ako's user only): move that file offline and delete it.",
            "With it, a new Ako on an empty data folder keeps its identity and reads its encrypted rooms",
            "(`ako restore-keys --config … --recovery-key '…'`). Without it, a lost data folder loses both.",
            rule,
        ]
    )


# --- set-up and the upload after each sync


class Recovery:
    """Sets recovery up at the first upkeep, then backs up new room keys at every upkeep."""

    def __init__(self, client: nio.AsyncClient, data_dir: Path):
        self.client = client
        self.data_dir = data_dir
        self.uploaded: Uploaded | None = None
        self.problem: str | None = None  # set: no backup until Ako is restarted
        self.arrivals = key_backup.Arrivals()  # room keys nio took since the backup caught up

    async def upkeep(self) -> None:
        if self.problem is not None or self.client.olm is None:
            return
        try:
            if self.uploaded is None:
                self.uploaded = await self._ready()
            await key_backup.upload_new(self.client, self.data_dir, self.uploaded, self.arrivals)
        except (KeyBackupError, SecretStorageError, RecoveryKeyError, identity_mod.IdentityError) as e:
            self.problem = str(e)
            log.error("Key backup: %s", e)
        except Exception as e:  # network trouble: the next upkeep tries again
            log.warning("Key backup failed (%s: %s); trying again after the next sync", type(e).__name__, e)

    async def _ready(self) -> Uploaded:
        """The backup this device writes to: the one recorded, or a new set-up."""
        c = self.client
        ours = identity_mod.load(self.data_dir)
        if ours is None:
            raise identity_mod.IdentityError("Ako has no cross-signing identity in its data folder, so recovery is not set up.")
        server = await key_backup.current_version(c)
        uploaded = Uploaded.load(self.data_dir)
        if uploaded is not None:
            if not (server and server.get("version") == uploaded.version and (server.get("auth_data") or {}).get("public_key") == uploaded.public_key):
                raise KeyBackupError(
                    f"The homeserver's key backup is {'gone' if not server else 'version ' + str(server.get('version'))}, not the one "
                    f"Ako writes to (version {uploaded.version}): someone deleted or replaced it. Room keys are not backed up until "
                    "`ako recovery-key new --config …` sets recovery up again."
                )
            if uploaded.master and uploaded.master != ours.master_public:
                log.error(
                    "Secret storage holds Ako's previous identity (master key %s), not its current one (%s): a restore would "
                    "fail. Run `ako recovery-key new --config …` to store the current one under a new recovery key.",
                    identity_mod.fingerprint(uploaded.master), identity_mod.fingerprint(ours.master_public),
                )
            return uploaded
        if (await identity_mod.published(c)).master != ours.master_public:
            raise identity_mod.IdentityError(
                "The homeserver does not hold Ako's identity, so recovery is not set up (it would store keys nobody trusts); "
                "it is, at the first start after the identity is sorted out."
            )
        key_id = await secret_storage.default_key_id(c)
        recovery_key = _read_recovery_file(self.data_dir)
        if recovery_key is None and recovery_file(self.data_dir).exists():
            raise RecoveryKeyError(f"{recovery_file(self.data_dir)} holds no recovery key Ako can read: move it away and restart Ako.")
        if key_id:
            description = await secret_storage.get_account_data(c, secret_storage.KEY_PREFIX + key_id) or {}
            if recovery_key is None or not secret_storage.key_matches(recovery_key, description):
                raise SecretStorageError(
                    f"{c.user_id} already has secret storage on its homeserver, which this data folder cannot open. If this is "
                    "a new data folder for an Ako that ran before, stop Ako, empty the data folder and run "
                    "`ako restore-keys --config … --recovery-key '…'` with the recovery key printed when Ako was first set up; "
                    "if that key is lost, `ako recovery-key new --config …` sets up a new one (the old backup's room keys are lost)."
                )
            return await set_up(c, self.data_dir, ours, recovery_key, SecretStorage(key_id, recovery_key), server)
        return await set_up(c, self.data_dir, ours, recovery_key, None, server)


async def set_up(
    client: nio.AsyncClient,
    data_dir: Path,
    ours: Identity,
    recovery_key: bytes | None = None,
    storage: SecretStorage | None = None,
    server: dict | None = None,
) -> Uploaded:
    """Recovery key, secret storage, backup: each step safe to repeat, so an interrupted set-up resumes
    with the key in RECOVERY-KEY.txt (written first). The key is printed once, when set-up completes."""
    if recovery_key is None:
        recovery_key = os.urandom(32)
        _write_recovery_file(data_dir, client.user_id, secret_storage.encode_recovery_key(recovery_key))
    if storage is None:
        storage = await secret_storage.create(client, recovery_key)
    private = await storage.read(client, key_backup.SECRET)
    private_key = unb64(private) if private else key_backup.new_private_key()
    public = key_backup.public_key(private_key)
    if not private:
        await storage.store(client, key_backup.SECRET, b64(private_key))  # before the backup: a crash reuses this key
    if server and (server.get("auth_data") or {}).get("public_key") == public:
        version = server["version"]
    else:
        version = await key_backup.create_version(client, public, ours)
    for usage in USAGES:
        await storage.store(client, CROSS_SIGNING_SECRET[usage], encode_signing_key_base64(ours.key(usage)))
    uploaded = Uploaded(version, public, master=ours.master_public)
    await asyncio.to_thread(uploaded.save, data_dir)
    log.warning(
        "Recovery set up: key backup version %s, secret storage key %s; the recovery key is printed below and kept in %s",
        version, storage.key_id, recovery_file(data_dir),
    )
    # printed, not logged: shown whatever bot.log_level says, and kept out of log files and collectors
    print(_banner(client.user_id, secret_storage.encode_recovery_key(recovery_key), recovery_file(data_dir)), file=sys.stderr, flush=True)
    return uploaded


async def new_recovery_key(client: nio.AsyncClient, data_dir: Path) -> Uploaded:
    """A new recovery key, secret storage and backup in place of the old (lost key, or a reset identity).
    The old backup's room keys become unreadable; the device's own are uploaded again at Ako's next start."""
    ours = identity_mod.load(data_dir)
    if ours is None:
        raise identity_mod.IdentityError(f"There is no cross-signing identity in {data_dir}: start Ako once first, or restore it.")
    for stale in (recovery_file(data_dir), Uploaded.path(data_dir)):
        stale.unlink(missing_ok=True)
    return await set_up(client, data_dir, ours)


# --- restore on an empty data folder


@dataclass
class Restored:
    identity: Identity
    version: str
    public_key: str
    sessions: list  # InboundGroupSession
    unreadable: int


def in_the_way(data_dir: Path) -> list[Path]:
    """What a restore would overwrite: it runs on a data folder without a device or an identity."""
    found = [data_dir / name for name in ("session.json", identity_mod.FILE, key_backup.FILE) if (data_dir / name).exists()]
    crypto = data_dir / "crypto"
    if crypto.exists() and any(crypto.iterdir()):
        found.append(crypto)
    return found


async def read_backup(client: nio.AsyncClient, recovery_key: bytes) -> Restored:
    """Everything a restore needs, read and checked; nothing is written."""
    storage = await secret_storage.open_default(client, recovery_key)
    keys = {}
    for usage in USAGES:
        secret = await storage.read(client, CROSS_SIGNING_SECRET[usage])
        if secret is None:
            raise SecretStorageError(f"The secret storage of {client.user_id} holds no {CROSS_SIGNING_SECRET[usage]} key: it was not set up by Ako.")
        key = decode_signing_key_base64("ed25519", "x", secret)
        key.version = identity_mod.public(key)
        keys[usage] = key
    ours = Identity(keys["master"], keys["self_signing"], keys["user_signing"])
    published = await identity_mod.published(client)
    if published.master != ours.master_public:
        raise SecretStorageError(
            f"The identity in secret storage (master key {identity_mod.fingerprint(ours.master_public)}) is not the one the homeserver "
            f"publishes for {client.user_id} ({identity_mod.fingerprint(published.master) if published.master else 'none'}): someone reset it."
        )
    private = await storage.read(client, key_backup.SECRET)
    if private is None:
        raise SecretStorageError(f"The secret storage of {client.user_id} holds no key backup key ({key_backup.SECRET}).")
    private_key = unb64(private)
    public = key_backup.public_key(private_key)
    server = await key_backup.current_version(client)
    if not server or (server.get("auth_data") or {}).get("public_key") != public:
        raise KeyBackupError("The homeserver's current key backup is not the one whose key is in secret storage, so its room keys cannot be read.")
    sessions, unreadable = [], 0
    for room_id, room in (await key_backup.download(client, server["version"])).items():
        for session_id, data in room.items():
            try:
                session = key_backup.restored_session(room_id, key_backup.decrypt(private_key, data["session_data"]))
            except (KeyBackupError, KeyError, TypeError, ValueError) as e:
                log.warning("Room key %s of %s in the backup cannot be read: %s", session_id, room_id, e)
                session = None
            if session is None or session.id != session_id:
                unreadable += 1
                continue
            sessions.append(session)
    return Restored(ours, server["version"], public, sessions, unreadable)


def import_sessions(client: nio.AsyncClient, sessions: list) -> int:
    """Into the device's crypto store, as nio's own key import does."""
    added = 0
    for session in sessions:
        if client.olm.inbound_group_store.add(session):
            client.olm.save_inbound_group_session(session)
            added += 1
    return added


async def learn_encrypted_rooms(client: nio.AsyncClient, restored: Restored) -> int:
    """Tell the new crypto store which of Ako's rooms are encrypted. nio learns it only from syncs, and
    Ako resumes its sync from its own token (no room state): a store that never synced would let Ako
    answer in clear text in an encrypted room. Every room the backup holds keys for is encrypted; the
    others are asked of the server, and a room whose answer is unclear counts as encrypted."""
    encrypted = {s.room_id for s in restored.sessions}
    status, data = await identity_mod._request(client, "GET", "/_matrix/client/v3/joined_rooms", {})
    if status != 200:
        raise KeyBackupError(f"The homeserver did not list Ako's rooms ({status}), so the new device cannot know which are encrypted.")
    for room_id in data.get("joined_rooms") or []:
        if room_id in encrypted:
            continue
        resp = await client.room_get_state_event(room_id, "m.room.encryption")
        if not isinstance(resp, nio.RoomGetStateEventError) or resp.status_code not in ("M_NOT_FOUND",):
            encrypted.add(room_id)
    client.encrypted_rooms.update(encrypted)
    client.store.save_encrypted_rooms(encrypted)
    return len(encrypted)


def remember_restored(data_dir: Path, restored: Restored) -> None:
    """The restored keys are in the backup already: they are not uploaded again."""
    keys = {f"{s.room_id} {s.id}": s.first_known_index for s in restored.sessions}
    uploaded = Uploaded(restored.version, restored.public_key, keys, master=restored.identity.master_public)
    uploaded.save(data_dir)
