"""The config file: TOML, validated at start, every error named by its key. No side effects."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from commands import when
from storage.models import USER_ID

# Values shipped in config.example.toml that must be changed before use.
PLACEHOLDERS = {"change-me", "@ako:school-a.example", "https://matrix.school-a.example", "@it:school-a.example"}


class ConfigError(Exception):
    """The config cannot be used; the message lists each problem by key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_placeholder(value):
    if isinstance(value, str) and value in PLACEHOLDERS:
        raise ValueError(f"still has the example value {value!r}; set your own")
    return value


class MatrixSection(_Section):
    homeserver: str
    user_id: str
    password: str | None = None
    access_token: str | None = None
    device_name: str = "ako"

    @field_validator("homeserver")
    @classmethod
    def _url(cls, v: str) -> str:
        _not_placeholder(v)
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be the client-server API base URL, starting with https:// (or http:// for a local test server)")
        return v.rstrip("/")

    @field_validator("user_id")
    @classmethod
    def _user(cls, v: str) -> str:
        _not_placeholder(v)
        if not USER_ID.match(v):
            raise ValueError("must be a full Matrix user id such as @ako:school-a.example")
        return v

    @field_validator("password", "access_token")
    @classmethod
    def _secret(cls, v):
        return _not_placeholder(v)

    @model_validator(mode="after")
    def _login(self):
        if not self.password and not self.access_token:
            raise ValueError("set password or access_token")
        return self


class BotSection(_Section):
    command_prefix: Annotated[str, Field(min_length=1, max_length=3)] = "!"
    operators: list[str] = Field(min_length=1)
    timezone: str = "Pacific/Auckland"
    data_dir: Path = Path("./data")
    allow_guests: bool = False
    reminder_offsets: list[str] = ["24h", "1h"]
    reminder_grace: str = "1h"
    max_upload_mb: Annotated[int, Field(ge=1, le=1024)] = 20
    encryption: bool = True
    encrypt_work_rooms: bool = True
    exclude_insecure_devices: bool = True
    log_level: str = "INFO"

    @field_validator("command_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if any(c.isspace() or c.isalnum() for c in v):
            raise ValueError("must be punctuation such as ! or ., with no letters, digits or spaces")
        return v

    @field_validator("operators")
    @classmethod
    def _operators(cls, v: list[str]) -> list[str]:
        for user in v:
            _not_placeholder(user)
            if not USER_ID.match(user):
                raise ValueError(f"{user!r} is not a full Matrix user id such as @it:school-a.example")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return when.zone(v).key

    @field_validator("reminder_offsets", "reminder_grace")
    @classmethod
    def _durations(cls, v: list[str] | str) -> list[str] | str:
        for item in [v] if isinstance(v, str) else v:
            if when.parse_duration(item) is None:
                raise ValueError(f"{item!r} is not a duration such as 24h or 90m")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v.upper()

    def offsets(self) -> list[timedelta]:
        return [when.parse_duration(o) for o in self.reminder_offsets]

    def grace(self) -> timedelta:
        return when.parse_duration(self.reminder_grace)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    matrix: MatrixSection
    bot: BotSection

    def resolve_paths(self, relative_to: Path) -> "Config":
        data_dir = self.bot.data_dir
        if not data_dir.is_absolute():
            data_dir = (relative_to / data_dir).resolve()
        return self.model_copy(update={"bot": self.bot.model_copy(update={"data_dir": data_dir})})


def load(path: Path) -> Config:
    """Read and validate the config; ConfigError names every problem by its key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"No config file at {path}. Copy config.example.toml and edit it.") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    try:
        return Config.model_validate(raw).resolve_paths(path.parent)
    except ValidationError as e:
        raise ConfigError(describe(e, path)) from None


def describe(error: ValidationError, path: Path) -> str:
    lines = [f"{path} has {error.error_count()} problem(s):"]
    for err in error.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a setting Ako knows (check the spelling against config.example.toml)"
        elif err["type"] == "missing":
            msg = "is required"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)
