"""Whose devices get Ako's room keys: a pure decision from a device, its owner's cross-signing keys and
Ako's records (README, "End-to-end encryption").

- A user of a blocked server, or of a server no school is registered for (unless guests are
  allowed), never gets a room key.
- With ``exclude_insecure_devices`` (the default, as Element does since MSC4153), a device gets
  keys only when its owner's self-signing key, itself signed by the owner's master key, signed it.
  The master key is trusted on first use: a device signed by the identity Ako has pinned needs no
  further decision.
- Without it, each device is trusted on first use (nio refuses a device whose keys change later).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from signedjson.key import decode_verify_key_base64
from signedjson.sign import SignatureVerifyException, verify_signed_json

from storage.models import server_of


UNSIGNED = "not cross-signed by its owner"  # the one refusal that a later signature undoes (bot/late_keys.py)


class Trust(enum.Enum):
    TRUST = "trusted"
    BLOCK = "blacklisted"


@dataclass(frozen=True)
class UserIdentity:
    """A user's cross-signing identity as the homeserver published it, checked."""

    user_id: str
    master: str | None
    signed_devices: dict[str, str] = field(default_factory=dict)  # device id -> the ed25519 key that was signed

    def signed(self, device_id: str, ed25519: str) -> bool:
        return self.master is not None and self.signed_devices.get(device_id) == ed25519


def _only_key(obj: dict | None) -> str | None:
    keys = list(((obj or {}).get("keys") or {}).values())
    return keys[0] if len(keys) == 1 else None


def _verify(obj: dict, user_id: str, public: str | None) -> bool:
    if not public or not isinstance(obj, dict):
        return False
    try:
        verify_signed_json(obj, user_id, decode_verify_key_base64("ed25519", public, public))
        return True
    except (SignatureVerifyException, ValueError, TypeError, KeyError):
        return False


def identities_from_query(response: dict) -> dict[str, UserIdentity]:
    """Every user's identity in a /keys/query response: which of their devices their own identity signed."""
    out: dict[str, UserIdentity] = {}
    users = set(response.get("device_keys") or {}) | set(response.get("master_keys") or {})
    for user_id in users:
        master_obj = (response.get("master_keys") or {}).get(user_id)
        master = _only_key(master_obj)
        if master_obj is not None and (master_obj.get("user_id") != user_id or "master" not in (master_obj.get("usage") or [])):
            master = None
        ssk_obj = (response.get("self_signing_keys") or {}).get(user_id) or {}
        ssk = _only_key(ssk_obj)
        if not (ssk and ssk_obj.get("user_id") == user_id and "self_signing" in (ssk_obj.get("usage") or []) and _verify(ssk_obj, user_id, master)):
            ssk = None
        signed = {}
        for device_id, keys in ((response.get("device_keys") or {}).get(user_id) or {}).items():
            if not isinstance(keys, dict) or keys.get("user_id") != user_id or keys.get("device_id") != device_id:
                continue
            ed25519 = (keys.get("keys") or {}).get(f"ed25519:{device_id}")
            if ed25519 and _verify(keys, user_id, ssk):
                signed[device_id] = ed25519
        out[user_id] = UserIdentity(user_id, master, signed)
    return out


def decide(
    user_id: str,
    device_id: str,
    ed25519: str,
    *,
    registered_servers: frozenset[str] | set[str],
    blocked_servers: frozenset[str] | set[str],
    allow_guests: bool,
    bot_user_id: str,
    exclude_insecure: bool,
    identity: UserIdentity | None,
) -> tuple[Trust, str]:
    """The decision for one device, and why (for the log)."""
    server = server_of(user_id)
    if server in blocked_servers and user_id != bot_user_id:
        return Trust.BLOCK, f"{server} is blocked"
    if not (user_id == bot_user_id or allow_guests or server in registered_servers):
        return Trust.BLOCK, f"{server} is no registered school's server"
    if not exclude_insecure:
        return Trust.TRUST, "trusted on first use"
    if identity is not None and identity.signed(device_id, ed25519):
        return Trust.TRUST, f"cross-signed by its owner (master key {identity.master})"
    return Trust.BLOCK, UNSIGNED
