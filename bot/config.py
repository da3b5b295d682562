"""Settings: config.toml (path from HOADEP_CONFIG) overridden by HOADEP_<SECTION>__<KEY>."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_PATH = "config.toml"
TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILE_API = "https://api.telegram.org/file/bot"


class TelegramSettings(BaseModel):
    token: SecretStr
    base_url: str = TELEGRAM_API
    base_file_url: str = TELEGRAM_FILE_API
    mode: Literal["polling", "webhook"] = "polling"
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # seconds a long poll waits at Telegram
    poll_timeout: int = Field(default=30, ge=0, le=120)

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().strip()
        head, sep, tail = raw.partition(":")
        if not (sep and head.isdigit() and len(tail) >= 20):
            raise ValueError("expected the form 123456789:ABC… given by @BotFather")
        return SecretStr(raw)

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
        if not 1 <= len(raw) <= 256 or set(raw) - allowed:
            raise ValueError("1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value


class DatabaseSettings(BaseModel):
    url: str = "sqlite:///hoadep.sqlite3"
    echo: bool = False


class OrganisationSettings(BaseModel):
    name: str = "Cục Thống kê"
    timezone: str = "Asia/Ho_Chi_Minh"
    default_language: Literal["vi", "en"] = "vi"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Ho_Chi_Minh)") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _split_ids(value: Any) -> Any:
    if isinstance(value, str):
        cleaned = value.strip().strip("[]").replace(";", ",")
        parts = [p.strip() for p in cleaned.split(",")]
        return [p for p in parts if p]
    if isinstance(value, int):
        return [value]
    return value


class AccessSettings(BaseModel):
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    invite_ttl_hours: int = Field(default=72, ge=1, le=24 * 60)
    # seconds a member's role is remembered between updates; changes made through this
    # instance apply at once, changes made elsewhere (CLI, another instance) within this time
    member_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # per-user flood control: at most `throttle_burst` updates in `throttle_window` seconds
    throttle_burst: int = Field(default=20, ge=1)
    throttle_window: float = Field(default=10.0, gt=0)

    _split = field_validator("admin_ids", mode="before")(_split_ids)


class SubmissionSettings(BaseModel):
    allow_self_nomination: bool = False
    daily_cap: int = Field(default=10, ge=1, le=1000)
    max_text_length: int = Field(default=2000, ge=50, le=3500)
    max_attachments: int = Field(default=10, ge=0, le=50)


class ModerationSettings(BaseModel):
    unit_officers_review_good_deeds: bool = True
    admin_chat_id: int | None = None
    vote_default_days: int = Field(default=7, ge=1)
    vote_max_days: int = Field(default=30, ge=1)
    approval_threshold: float = Field(default=0.5, gt=0, le=1)


class AnnouncementSettings(BaseModel):
    tick_seconds: float = Field(default=20.0, gt=0, le=3600)
    grace_minutes: int = Field(default=120, ge=0)
    post_invitation_when_empty: bool = False
    global_rate: float = Field(default=30.0, gt=0)
    group_rate_per_minute: float = Field(default=20.0, gt=0)
    # "scheduler" runs only the announcement ticker (a second instance beside a polling one)
    role: Literal["all", "scheduler"] = "all"


class DeliverySettings(BaseModel):
    """Messages to people and announcements to groups while Telegram or the network fails."""

    # a message is retried this long before it is given up (unless it expires sooner)
    retry_hours: int = Field(default=72, ge=72, le=24 * 30)
    # the longest wait between two attempts of one message
    max_backoff_seconds: float = Field(default=900.0, ge=1, le=3600)
    # administrators are told once delivery has been failing this long, and again on recovery
    alert_after_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    # a ballot whose invitations did not all arrive is reported this long before its deadline
    ballot_warning_hours: float = Field(default=24.0, gt=0, le=24 * 30)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOADEP_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    telegram: TelegramSettings
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    organisation: OrganisationSettings = Field(default_factory=OrganisationSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    submissions: SubmissionSettings = Field(default_factory=SubmissionSettings)
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)
    announcements: AnnouncementSettings = Field(default_factory=AnnouncementSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get("HOADEP_CONFIG", DEFAULT_CONFIG_PATH)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, Path(path)))


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it and says how to fix it."""


def _describe(error: Any) -> str:
    loc = [str(p) for p in error["loc"] if not isinstance(p, int)]
    if loc == ["telegram"] and error["type"] == "missing":
        loc = ["telegram", "token"]
    where = ".".join(loc)
    env = "HOADEP_" + "__".join(p.upper() for p in loc)
    if error["type"] == "missing":
        what = "is missing"
    elif error["type"] == "extra_forbidden":
        return f"  - {where}: unknown setting (check the spelling against config.example.toml)"
    else:
        what = f"is invalid: {error['msg']}"
    return f"  - {where} {what} (set it in config.toml or as {env})"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings or raise ConfigError with one readable message."""
    path = Path(os.environ.get("HOADEP_CONFIG", DEFAULT_CONFIG_PATH))
    if "HOADEP_CONFIG" in os.environ and not path.is_file():
        raise ConfigError(f"HOADEP_CONFIG points to {path}, which does not exist.")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        hint = (
            "Copy config.example.toml to config.toml and fill it in, or set the "
            "environment variables shown. A bot token comes from @BotFather."
        )
        raise ConfigError("Hoa Đẹp cannot start:\n" + "\n".join(lines) + "\n" + hint) from None
    except Exception as exc:  # a TOML syntax error, an unreadable file
        raise ConfigError(f"Hoa Đẹp cannot read its configuration {path}: {exc}") from None
