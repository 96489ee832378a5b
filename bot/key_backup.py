"""Server-side backup of the room keys Ako's device holds (``m.megolm_backup.v1.curve25519-aes-sha2``),
so that a new device of Ako's reads the encrypted rooms' history.

Each room key is encrypted to the backup's public key (an ephemeral curve25519 key, ECDH, HKDF-SHA256,
AES-256-CBC, and the MAC of an empty string that every implementation has computed since libolm). The
private key is kept only in secret storage (bot/secret_storage.py), under the operator's recovery key.
Which keys went up is kept in data_dir/key-backup.json, so each sync uploads only what is new.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import nio
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad, unpad
from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base
from nio.crypto.sessions import InboundGroupSession
from signedjson.sign import sign_json

from .identity import Identity, _request
from .secret_storage import b64, hkdf_sha256, unb64

log = logging.getLogger("ako.key_backup")

ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
SECRET = "m.megolm_backup.v1"  # the secret storage name of the backup's private key
MEGOLM = "m.megolm.v1.aes-sha2"
FILE = "key-backup.json"
BATCH = 200  # room keys per upload request


class KeyBackupError(Exception):
    """A sentence for the operator: what is wrong with the backup on the homeserver."""


# --- the algorithm


def new_private_key() -> bytes:
    return os.urandom(32)  # X25519 clamps any 32 bytes


def public_key(private: bytes) -> str:
    return b64(crypto_scalarmult_base(private))


def _derive(shared: bytes) -> tuple[bytes, bytes, bytes]:
    out = hkdf_sha256(shared, 80)
    return out[:32], out[32:64], out[64:]


def encrypt(public: str, plaintext: dict) -> dict:
    """The ``session_data`` of one room key: {ephemeral, ciphertext, mac}."""
    ephemeral = new_private_key()
    aes, mac_key, iv = _derive(crypto_scalarmult(ephemeral, unb64(public)))
    ciphertext = AES.new(aes, AES.MODE_CBC, iv).encrypt(pad(json.dumps(plaintext).encode(), 16))
    return {
        "ephemeral": public_key(ephemeral),
        "ciphertext": b64(ciphertext),
        "mac": b64(hmac.new(mac_key, b"", hashlib.sha256).digest()[:8]),
    }


def decrypt(private: bytes, session_data: dict) -> dict:
    try:
        aes, mac_key, iv = _derive(crypto_scalarmult(private, unb64(session_data["ephemeral"])))
        if not hmac.compare_digest(hmac.new(mac_key, b"", hashlib.sha256).digest()[:8], unb64(session_data["mac"])):
            raise KeyBackupError("A room key in the backup does not match the backup's key (its MAC differs).")
        data = AES.new(aes, AES.MODE_CBC, iv).decrypt(unb64(session_data["ciphertext"]))
        return json.loads(unpad(data, 16))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # nacl: RuntimeError for a key of the wrong size or a low-order point
        raise KeyBackupError(f"A room key in the backup cannot be read ({type(e).__name__}).") from e


def backup_data(session: InboundGroupSession, public: str) -> dict:
    """A room key as the backup holds it (KeyBackupData), encrypted."""
    index = session.first_known_index
    plaintext = {
        "algorithm": MEGOLM,
        "forwarding_curve25519_key_chain": list(session.forwarding_chain),
        "sender_key": session.sender_key,
        "sender_claimed_keys": {"ed25519": session.ed25519},
        "session_key": session.export_session(index),
    }
    return {
        "first_message_index": index,
        "forwarded_count": len(session.forwarding_chain),
        "is_verified": False,  # nio keeps no verification state for room keys
        "session_data": encrypt(public, plaintext),
    }


def restored_session(room_id: str, plaintext: dict) -> InboundGroupSession | None:
    if plaintext.get("algorithm") != MEGOLM:
        return None
    return InboundGroupSession.import_session(
        plaintext["session_key"],
        plaintext["sender_claimed_keys"]["ed25519"],
        plaintext["sender_key"],
        room_id,
        plaintext.get("forwarding_curve25519_key_chain") or [],
    )


# --- the homeserver


async def current_version(client: nio.AsyncClient) -> dict | None:
    """The backup keys can be written to (the newest version), or None."""
    status, data = await _request(client, "GET", "/_matrix/client/v3/room_keys/version", {})
    if status == 404:
        return None
    if status != 200:
        raise KeyBackupError(f"The homeserver did not say which key backup is current: {status} {data.get('errcode', '')}".strip())
    return data


def signed_auth_data(client: nio.AsyncClient, public: str, identity: Identity) -> dict:
    """Signed by Ako's master key and its device, so Ako's other devices (and Element) trust the backup."""
    auth = {"public_key": public}
    signed = sign_json(dict(auth), client.user_id, identity.master)
    if client.olm is not None:
        signed["signatures"][client.user_id][f"ed25519:{client.device_id}"] = client.olm.sign_json(auth)
    return signed


async def create_version(client: nio.AsyncClient, public: str, identity: Identity) -> str:
    body = {"algorithm": ALGORITHM, "auth_data": signed_auth_data(client, public, identity)}
    status, data = await _request(client, "POST", "/_matrix/client/v3/room_keys/version", body)
    if status != 200 or "version" not in data:
        raise KeyBackupError(f"The homeserver refused a new key backup: {status} {data.get('errcode', '')} {data.get('error', '')}".strip())
    return data["version"]


async def upload(client: nio.AsyncClient, version: str, rooms: dict[str, dict[str, dict]]) -> None:
    body = {"rooms": {room_id: {"sessions": sessions} for room_id, sessions in rooms.items()}}
    status, data = await _request(client, "PUT", f"/_matrix/client/v3/room_keys/keys?version={quote(version)}", body)
    if status == 403 and data.get("errcode") == "M_WRONG_ROOM_KEYS_VERSION":
        raise KeyBackupError(
            f"The homeserver's key backup is now version {data.get('current_version')}, not Ako's ({version}): someone made a new "
            "one. Room keys are no longer backed up by this Ako: if that was `ako recovery-key new`, restart Ako; if not, run it."
        )
    if status != 200:
        raise KeyBackupError(f"The homeserver refused room keys for the backup: {status} {data.get('errcode', '')}".strip())


async def download(client: nio.AsyncClient, version: str) -> dict:
    """Every room key in the backup: {room_id: {session_id: KeyBackupData}}."""
    status, data = await _request(client, "GET", f"/_matrix/client/v3/room_keys/keys?version={quote(version)}", {})
    if status != 200:
        raise KeyBackupError(f"The homeserver did not give the backup's room keys: {status} {data.get('errcode', '')}".strip())
    return {room_id: room.get("sessions") or {} for room_id, room in (data.get("rooms") or {}).items()}


# --- what this device has uploaded


@dataclass
class Uploaded:
    """data_dir/key-backup.json: the backup Ako writes to, and which room keys went into it."""

    version: str
    public_key: str
    keys: dict[str, int] = field(default_factory=dict)  # "room_id session_id" → first known index uploaded
    master: str | None = None  # the master key of the identity put in secret storage with this backup

    @staticmethod
    def path(data_dir: Path) -> Path:
        return data_dir / FILE

    @classmethod
    def load(cls, data_dir: Path) -> "Uploaded | None":
        try:
            raw = json.loads(cls.path(data_dir).read_text())
            return cls(raw["version"], raw["public_key"], dict(raw.get("keys") or {}), raw.get("master"))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as e:
            log.warning("%s cannot be read (%s): every room key is uploaded again", cls.path(data_dir), type(e).__name__)
            return None

    def save(self, data_dir: Path) -> None:
        path = self.path(data_dir)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"version": self.version, "public_key": self.public_key, "master": self.master, "keys": self.keys}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def _slot(room_id: str, session_id: str) -> str:
    return f"{room_id} {session_id}"


class Arrivals:
    """The room keys nio's store took since the backup last caught up. Until it first catches up
    with a store (at the start, or when nio made a new store) a look walks the whole store; after
    that only what was added since, so a sync does not walk one key for every room Ako ever wrote
    into (3,200 at 3,200 rooms)."""

    def __init__(self) -> None:
        self._store: object | None = None
        self._whole = True
        self._added: list[InboundGroupSession] = []
        self._looked = 0

    def look(self, store) -> list[InboundGroupSession]:
        if store is not self._store:
            self._store, self._added, self._whole = store, [], True
            take = store.add  # every key nio keeps goes through it: made, received, forwarded, imported

            def add(session: InboundGroupSession) -> bool:
                kept = take(session)
                if kept:
                    self._added.append(session)
                return kept

            store.add = add
        self._looked = len(self._added)
        return list(store) if self._whole else self._added[: self._looked]

    def caught_up(self) -> None:
        """What the last look returned is in the backup; keys added since wait for the next look."""
        self._whole = False
        del self._added[: self._looked]


def new_sessions(client: nio.AsyncClient, uploaded: Uploaded, arrivals: Arrivals | None = None) -> list[InboundGroupSession]:
    """Room keys the device holds that the backup lacks, or holds from a later message index: of
    the whole store, or with ``arrivals`` of what the store took since the backup caught up."""
    store = getattr(client.olm, "inbound_group_store", None)
    if store is None:
        return []
    out = []
    for session in store if arrivals is None else arrivals.look(store):
        known = uploaded.keys.get(_slot(session.room_id, session.id))
        if known is None or session.first_known_index < known:
            out.append(session)
    return out


async def upload_new(client: nio.AsyncClient, data_dir: Path, uploaded: Uploaded, arrivals: Arrivals | None = None) -> int:
    """Upload what is new, in batches, recording each batch once the server has it. Returns how many."""
    sessions = new_sessions(client, uploaded, arrivals)
    for i in range(0, len(sessions), BATCH):
        batch = sessions[i : i + BATCH]
        rooms: dict[str, dict[str, dict]] = {}
        for session in batch:
            rooms.setdefault(session.room_id, {})[session.id] = backup_data(session, uploaded.public_key)
        await upload(client, uploaded.version, rooms)
        for session in batch:
            uploaded.keys[_slot(session.room_id, session.id)] = session.first_known_index
        await asyncio.to_thread(uploaded.save, data_dir)
    if arrivals is not None:
        arrivals.caught_up()
    if sessions:
        log.info("Backed up %d room key(s) to key backup version %s", len(sessions), uploaded.version)
    return len(sessions)
