"""Ako's config file for a local run (`ako dev`, the tests, the benchmark), written with ``tomli_w``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w


def _plain(value: Any) -> Any:
    """What TOML writes: paths as text, no None (a key set to None is left out)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_bot_config(
    path: Path,
    homeserver_url: str,
    bot_user_id: str,
    bot_password: str,
    operators: list[str],
    data_dir: Path,
    *,
    defaults: dict[str, dict[str, Any]] | None = None,
    **overrides: dict[str, Any],
) -> Path:
    """Write the config. ``defaults`` and then ``overrides`` are ``section={key: value}``, merged over
    Ako's own defaults (new sections and keys allowed; a value of None removes a key);
    ``overrides={"bot": {...}}`` is read as ``bot={...}``."""
    doc: dict[str, dict[str, Any]] = {
        "matrix": {"homeserver": homeserver_url, "user_id": bot_user_id, "password": bot_password, "device_name": "ako"},
        "bot": {
            "command_prefix": "!",
            "operators": list(operators),
            "timezone": "Pacific/Auckland",
            "data_dir": str(data_dir),
            "allow_guests": False,
            "reminder_offsets": ["24h", "1h"],
            "reminder_grace": "1h",
            "max_upload_mb": 20,
            "encryption": True,
            "encrypt_work_rooms": True,
        },
    }
    if isinstance(overrides.get("overrides"), dict) and all(isinstance(v, dict) for v in overrides["overrides"].values()):
        overrides = {**overrides.pop("overrides"), **overrides}
    for layer in (defaults or {}, overrides):
        for section, values in layer.items():
            if not isinstance(values, dict):
                raise TypeError(f"override {section!r} must be a dict of key -> value")
            doc.setdefault(section, {}).update(values)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(_plain(doc)), encoding="utf-8")
    return path
