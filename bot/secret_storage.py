"""Ako's secrets on its homeserver, encrypted under a recovery key only the operator keeps (Matrix
"Secrets", secret storage with ``m.secret_storage.v1.aes-hmac-sha2``).

What Element calls the recovery key is the secret storage key: 32 random bytes, shown as the spec's
cryptographic key representation (0x8B 0x01, the key, a parity byte; base58; a space every four
characters). The key's description in account data carries a MAC of 32 encrypted zero bytes, so a
wrong key is told apart from a right one before anything is decrypted or written.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as random
import string
from dataclasses import dataclass
from urllib.parse import quote

import nio
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from .identity import _request

ALGORITHM = "m.secret_storage.v1.aes-hmac-sha2"
DEFAULT_KEY = "m.secret_storage.default_key"
KEY_PREFIX = "m.secret_storage.key."
KEY_NAME = "Ako's recovery key"
_HEADER = bytes([0x8B, 0x01])
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class RecoveryKeyError(Exception):
    """A sentence for the operator: the recovery key is malformed, or not the one that opens Ako's secrets."""


class SecretStorageError(Exception):
    """A sentence for the operator: what is wrong with the secrets on the homeserver."""


# --- encodings


def b64(data: bytes) -> str:
    """Unpadded base64, as Matrix writes keys."""
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    """Padded or unpadded base64 (the spec asks readers to accept both)."""
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _base58_encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _BASE58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _base58_decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + _BASE58.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def encode_recovery_key(key: bytes) -> str:
    raw = _HEADER + key
    parity = 0
    for byte in raw:
        parity ^= byte
    text = _base58_encode(raw + bytes([parity]))
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def decode_recovery_key(text: str) -> bytes:
    compact = "".join(text.split())
    bad = sorted({ch for ch in compact if ch not in _BASE58})
    if not compact or bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        raise RecoveryKeyError(
            "That is not a recovery key: " + (f"it has characters no recovery key has ({shown})." if bad else "it is empty.")
            + " Give the 48 characters of RECOVERY-KEY.txt, in groups of four (the spaces may be left out)."
        )
    raw = _base58_decode(compact)
    parity = 0
    for byte in raw:
        parity ^= byte
    if len(raw) != 35 or raw[:2] != _HEADER or parity != 0:
        raise RecoveryKeyError(
            "That is not a recovery key: its check digit does not match (a character is mistyped, missing or extra). "
            "Copy it again from RECOVERY-KEY.txt."
        )
    return raw[2:34]


# --- the algorithm


def hkdf_sha256(key: bytes, length: int, info: bytes = b"") -> bytes:
    """HKDF-SHA256 with a salt of 32 zero bytes, as secret storage and the key backup use it."""
    return HKDF(key, length, bytes(32), SHA256, context=info)


def _keys(key: bytes, name: str) -> tuple[bytes, bytes]:
    derived = hkdf_sha256(key, 64, name.encode())
    return derived[:32], derived[32:]


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-256-CTR with the whole 16-byte IV as the initial counter."""
    return AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(data)


def _iv() -> bytes:
    iv = bytearray(os.urandom(16))
    iv[8] &= 0x7F  # bit 63 cleared: AES-CTR implementations differ in how the counter overflows
    return bytes(iv)


def encrypt(key: bytes, name: str, secret: str) -> dict:
    """The ``encrypted`` entry of one secret under one key: {iv, ciphertext, mac}."""
    aes, mac_key = _keys(key, name)
    iv = _iv()
    ciphertext = _ctr(aes, iv, secret.encode())
    return {"iv": b64(iv), "ciphertext": b64(ciphertext), "mac": b64(hmac.new(mac_key, ciphertext, hashlib.sha256).digest())}


def decrypt(key: bytes, name: str, data: dict) -> str:
    aes, mac_key = _keys(key, name)
    try:
        ciphertext, iv, mac = unb64(data["ciphertext"]), unb64(data["iv"]), unb64(data["mac"])
    except (KeyError, TypeError, ValueError) as e:
        raise SecretStorageError(f"The secret {name} on the homeserver is malformed ({type(e).__name__}).") from e
    if not hmac.compare_digest(hmac.new(mac_key, ciphertext, hashlib.sha256).digest(), mac):
        raise SecretStorageError(f"The secret {name} on the homeserver does not match the recovery key (its MAC differs): it was changed.")
    return _ctr(aes, iv, ciphertext).decode()


def describe_key(key: bytes) -> dict:
    """The key's description: the MAC of 32 zero bytes encrypted under it, to check a key given later."""
    aes, mac_key = _keys(key, "")
    iv = _iv()
    check = _ctr(aes, iv, bytes(32))
    return {"algorithm": ALGORITHM, "name": KEY_NAME, "iv": b64(iv), "mac": b64(hmac.new(mac_key, check, hashlib.sha256).digest())}


def key_matches(key: bytes, description: dict) -> bool:
    if "iv" not in description or "mac" not in description:
        return True  # the spec: without them, a client must assume the key is valid
    aes, mac_key = _keys(key, "")
    check = _ctr(aes, unb64(description["iv"]), bytes(32))
    return hmac.compare_digest(hmac.new(mac_key, check, hashlib.sha256).digest(), unb64(description["mac"]))


# --- account data


async def get_account_data(client: nio.AsyncClient, event_type: str) -> dict | None:
    path = f"/_matrix/client/v3/user/{quote(client.user_id)}/account_data/{quote(event_type)}"
    status, data = await _request(client, "GET", path, {})
    if status == 404:
        return None
    if status != 200:
        raise SecretStorageError(f"The homeserver did not give Ako's account data {event_type}: {status} {data.get('errcode', '')}".strip())
    return data


async def put_account_data(client: nio.AsyncClient, event_type: str, content: dict) -> None:
    path = f"/_matrix/client/v3/user/{quote(client.user_id)}/account_data/{quote(event_type)}"
    status, data = await _request(client, "PUT", path, content)
    if status != 200:
        raise SecretStorageError(f"The homeserver refused Ako's account data {event_type}: {status} {data.get('errcode', '')}".strip())


@dataclass(frozen=True)
class SecretStorage:
    """The default secret storage key, opened: reads and writes secrets in account data."""

    key_id: str
    key: bytes

    async def read(self, client: nio.AsyncClient, name: str) -> str | None:
        content = await get_account_data(client, name)
        entry = ((content or {}).get("encrypted") or {}).get(self.key_id)
        return None if entry is None else decrypt(self.key, name, entry)

    async def store(self, client: nio.AsyncClient, name: str, secret: str) -> None:
        await put_account_data(client, name, {"encrypted": {self.key_id: encrypt(self.key, name, secret)}})


async def default_key_id(client: nio.AsyncClient) -> str | None:
    content = await get_account_data(client, DEFAULT_KEY)
    return (content or {}).get("key")


async def open_default(client: nio.AsyncClient, recovery_key: bytes) -> SecretStorage:
    """The account's default secret storage, if this recovery key opens it; else a sentence."""
    key_id = await default_key_id(client)
    if not key_id:
        raise SecretStorageError(f"{client.user_id} has no secret storage on its homeserver: there is nothing to restore with a recovery key.")
    description = await get_account_data(client, KEY_PREFIX + key_id)
    if not description or description.get("algorithm") != ALGORITHM:
        raise SecretStorageError(f"The secret storage key of {client.user_id} is not one Ako can use ({(description or {}).get('algorithm')}).")
    if not key_matches(recovery_key, description):
        raise RecoveryKeyError(
            f"That recovery key does not open the secret storage of {client.user_id}: it is a valid recovery key, but not "
            "this account's (the check on the homeserver differs). Nothing was written. Use the key Ako printed when it was set up."
        )
    return SecretStorage(key_id, recovery_key)


async def create(client: nio.AsyncClient, recovery_key: bytes) -> SecretStorage:
    """A new default key: its description first, then the pointer to it (a crash in between leaves the old default)."""
    key_id = "".join(random.choice(string.ascii_letters + string.digits) for _ in range(32))
    await put_account_data(client, KEY_PREFIX + key_id, describe_key(recovery_key))
    await put_account_data(client, DEFAULT_KEY, {"key": key_id})
    return SecretStorage(key_id, recovery_key)
