"""Settings: one pydantic-settings class read from ``PLACESENSE_*`` variables and an optional TOML file.

The file is named by ``PLACESENSE_CONFIG``; environment variables win over it. Secrets (passwords, tokens) are
only ever taken from the environment or that file, never from code, and obvious placeholders are refused.
Nothing else in placesense reads the environment: the composition root builds a ``Settings`` and passes the
parts each room needs.
"""

from __future__ import annotations

import base64
import binascii
import os
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from placesense.basics.errors import ConfigError

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "password", "secret", "example", "xxx", "todo"})


class Settings(BaseSettings):
    """Everything an operator can set. Defaults suit ``make demo`` on one machine."""

    model_config = SettingsConfigDict(env_prefix="PLACESENSE_", extra="forbid", validate_default=True)

    # MQTT
    mqtt_url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port")
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_alerts_username: str | None = Field(
        None, description="the alerts publisher's own broker account (required with PLACESENSE_MQTT_USERNAME)"
    )
    mqtt_alerts_password: SecretStr | None = None
    mqtt_ca_file: Path | None = Field(None, description="CA bundle for mqtts:// (system CAs if unset)")
    mqtt_client_id: str = Field("placesense-ingest", description="fixed id: the broker keeps its session")
    topic_prefix: str = Field("", description="prepended to every topic, e.g. 'council-a/'")
    mqtt_receive_maximum: int = Field(
        5000, ge=10, le=65535, description="bound on un-acknowledged messages held in memory"
    )

    # InfluxDB (v1 HTTP API: 1.x natively, 2.x via its compatibility API, 3.x natively)
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "placesense"
    influx_rp: str = Field("", description="retention policy; empty means the database's default")
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = Field(None, description="2.x/3.x token, sent as 'Authorization: Token …'")
    influx_create_db: bool = Field(True, description="CREATE DATABASE at start (needs admin rights on 1.x)")
    influx_timeout_s: float = Field(10.0, gt=0)

    # Relational store (dead letters, discovered devices, alerts, audit)
    database_url: str = "sqlite:///var/placesense.db"

    # Ingest
    registry_path: Path = Field(Path("config/registry.yaml"), description="the device registry file")
    spool_dir: Path = Field(Path("var/spool"), description="readings wait here while InfluxDB is down")
    spool_max_mb: int = Field(2048, ge=1, description="refuse (and stop acknowledging) past this size")
    batch_max_points: int = Field(5000, ge=1, le=100_000)
    batch_max_ms: int = Field(25, ge=1, le=60_000)
    batch_linger_ms: int = Field(10, ge=0, le=60_000, description="a batch ends after this quiet a spell")
    max_payload_bytes: int = Field(64 * 1024, ge=256)
    max_future_s: int = Field(600, ge=0, description="reject timestamps further ahead than this")
    max_past_days: int = Field(90, ge=1, description="reject timestamps older than this")
    dead_letter_max_mb: int = Field(
        256, ge=1, description="the dead-letter store's bound; past it the oldest letters are removed"
    )

    # Rules, detectors, API
    clock: Literal["live", "event"] = "live"
    rules_path: Path | None = Field(None, description="rules file; built-in defaults if unset")
    state_dir: Path = Field(
        Path("var/state"), description="saved evaluation state and the journal of readings waiting for the rules"
    )
    ha: bool = Field(
        False, description="one of several instances sharing PostgreSQL: a lease decides which ingests and "
        "evaluates; the journal and saved state live in the database (docs/scaling.md)",
    )
    instance_name: str = Field(
        default_factory=lambda: socket.gethostname().split(".")[0][:40] or "placesense",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", description="this instance's name, unique among instances",
    )
    ha_lease_s: float = Field(15.0, ge=3, le=300, description="a leader silent this long is replaced")
    evaluation_max_pending: int = Field(
        50_000, ge=1000, description="stored readings the rules may be behind before ingest waits for them"
    )
    evaluation_stall_alert_s: float = Field(
        20.0, gt=0, description="the evaluation process owing an answer this long is reported stalled"
    )
    evaluation_stall_kill_s: float = Field(
        60.0, gt=0, description="...and this long, it is ended and a new one takes over from the saved state"
    )
    webhook_urls: list[str] = Field(default_factory=list, description="URLs that receive alert changes")
    webhook_secret: SecretStr | None = Field(
        None, description="Standard Webhooks signing secret: whsec_<base64>, or any string used as the key itself"
    )
    # Notifications to people (README, Notifications): channels set up here, who is told in the rules file
    public_url: str | None = Field(
        None, description="the address people's phones reach placesense at, for acknowledge links (https://…)"
    )
    ack_link_secret: SecretStr | None = Field(None, description="signs acknowledge links (32+ random characters)")
    notify_api_key: SecretStr | None = Field(None, description="GOV.UK Notify API key (a 'team and guest list' "
                                              "or 'live' key)")
    notify_base_url: str = Field("https://api.notifications.service.gov.uk", description="GOV.UK Notify's API")
    notify_sms_template_id: str | None = Field(None, description="Notify text message template: ((body))")
    notify_email_template_id: str | None = Field(None, description="Notify email template: ((subject)), ((body))")
    notify_receipt_every_s: float = Field(60.0, ge=1, le=3600, description="how often Notify is asked what "
                                          "became of messages it took")
    notify_failing_after_s: float = Field(10.0, gt=0, description="a channel failing to reach someone this long "
                                          "is an ops alert (not a reconnect's blink)")
    smtp_host: str | None = Field(None, description="mail server for plain email (instead of Notify email)")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), tls (port 465), or none (a relay on the same host only)"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = Field(None, description="the From address of alert emails")
    smtp_ca_file: Path | None = Field(None, description="CA bundle for the mail server (system CAs if unset)")
    chat_urls: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="chat target name -> Apprise URL (workflows://… for a Teams channel), as JSON; rotas name them",
    )
    tick_interval_s: float = Field(5.0, gt=0, le=300, description="how often time-based rules are checked (live)")
    api_bind: str = Field("127.0.0.1:8080", description="host:port for the HTTP API")
    tokens_path: Path | None = Field(None, description="API tokens file")
    broker_dir: Path | None = Field(
        None, description="the folder 'placesense broker-config' wrote: registering a device adds its account there"
    )
    broker_pid_file: Path | None = Field(
        None, description="mosquitto's pid file (Debian: /run/mosquitto/mosquitto.pid): signalled to re-read accounts"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("PLACESENSE_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
        if parts.password:
            raise ValueError("put the password in PLACESENSE_MQTT_PASSWORD, not in the URL")
        return value

    @field_validator("influx_url")
    @classmethod
    def _influx_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like http://host:8086")
        return value.rstrip("/")

    @field_validator("mqtt_password", "mqtt_alerts_password", "influx_password", "influx_token", "webhook_secret",
                     "ack_link_secret", "notify_api_key", "smtp_password")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("is a placeholder; set the real secret in the environment")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if any(c in value for c in "+#\0"):
            raise ValueError("must not contain MQTT wildcards")
        if value and not value.endswith("/"):
            value += "/"
        return value

    @model_validator(mode="after")
    def _alerts_account(self) -> Settings:
        # A broker that binds client ids to usernames (as placesense broker-config makes it) lets one connection
        # per account: ingest and the alerts publisher sharing one would take each other's session.
        if self.mqtt_username and not self.mqtt_alerts_username:
            raise ValueError(
                "PLACESENSE_MQTT_ALERTS_USERNAME (and _PASSWORD) is required with PLACESENSE_MQTT_USERNAME: the "
                "alerts publisher needs its own broker account ('placesense broker-config' makes one)"
            )
        if self.mqtt_alerts_username and self.mqtt_alerts_username == self.mqtt_username:
            raise ValueError("PLACESENSE_MQTT_ALERTS_USERNAME must differ from PLACESENSE_MQTT_USERNAME")
        return self

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if secret.startswith("whsec_"):
                try:
                    encoded = secret.removeprefix("whsec_").rstrip("=")
                    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
                except binascii.Error as exc:
                    raise ValueError("a whsec_ secret must be base64 after the prefix") from exc
            else:
                key = secret.encode("utf-8")
            if len(key) < 16:
                raise ValueError("is too short to sign with: use at least 16 bytes (24 random bytes as whsec_…)")
        return value

    @model_validator(mode="after")
    def _shared_database(self) -> Settings:
        if self.ha and not self.database_url.startswith(("postgresql:", "postgresql+psycopg:")):
            raise ValueError("PLACESENSE_HA needs PLACESENSE_DATABASE_URL to be PostgreSQL, shared by the instances")
        return self

    @model_validator(mode="after")
    def _webhooks_signed(self) -> Settings:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("PLACESENSE_WEBHOOK_SECRET is required when PLACESENSE_WEBHOOK_URLS is set")
        return self

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like https://placesense.council.example")
        return value.rstrip("/")

    @field_validator("ack_link_secret")
    @classmethod
    def _link_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 16:
            raise ValueError("is too short to sign with: use 32 or more random characters")
        return value

    @model_validator(mode="after")
    def _notifications(self) -> Settings:
        if self.public_url and self.ack_link_secret is None:
            raise ValueError("PLACESENSE_ACK_LINK_SECRET is required with PLACESENSE_PUBLIC_URL: it signs the "
                             "acknowledge links in messages")
        if self.notify_api_key is None and (self.notify_sms_template_id or self.notify_email_template_id):
            raise ValueError("PLACESENSE_NOTIFY_API_KEY is required with a Notify template id")
        if self.notify_api_key is not None and not (self.notify_sms_template_id or self.notify_email_template_id):
            raise ValueError("PLACESENSE_NOTIFY_API_KEY needs PLACESENSE_NOTIFY_SMS_TEMPLATE_ID and/or "
                             "PLACESENSE_NOTIFY_EMAIL_TEMPLATE_ID")
        if self.smtp_host and not self.smtp_from:
            raise ValueError("PLACESENSE_SMTP_FROM is required with PLACESENSE_SMTP_HOST")
        if self.smtp_host and self.notify_email_template_id:
            raise ValueError("email goes through GOV.UK Notify or SMTP, not both: unset PLACESENSE_SMTP_HOST or "
                             "PLACESENSE_NOTIFY_EMAIL_TEMPLATE_ID")
        return self

    @property
    def mqtt_host(self) -> str:
        return urlsplit(self.mqtt_url).hostname or "127.0.0.1"

    @property
    def mqtt_port(self) -> int:
        parts = urlsplit(self.mqtt_url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def mqtt_tls(self) -> bool:
        return urlsplit(self.mqtt_url).scheme == "mqtts"

    @property
    def api_host(self) -> str:
        return self.api_bind.rsplit(":", 1)[0]

    @property
    def api_port(self) -> int:
        return int(self.api_bind.rsplit(":", 1)[1])


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable ``ConfigError``."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            lines.append(f"  PLACESENSE_{name.upper()}: {err['msg']}")
        raise ConfigError("invalid settings:\n" + "\n".join(lines)) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the config file named by PLACESENSE_CONFIG: {exc}") from exc
