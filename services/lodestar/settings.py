"""Configuration, resolved once from ``LODESTAR_*`` environment variables.

``Settings.from_env()`` is called at the edge (the CLI, a test fixture) and the
resulting immutable value is passed down; no module reads the environment on
its own and no module holds a client. Every variable is listed in ``SETTINGS``
with its default and meaning; the README's settings table is generated from
it (``lodestar settings --markdown``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from lodestar.channel_settings import CHANNEL_SETTINGS_ROWS, ChannelSettings, ChannelSettingsError
from lodestar.core.topics import Topic, dlq_name, topic_name

_Getter = Callable[[str], str]


class SettingsError(ValueError):
    """A ``LODESTAR_*`` variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default and one-line meaning."""

    env: str
    default: str
    help: str


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "lodestar")


SETTINGS: tuple[Setting, ...] = (
    Setting("LODESTAR_DATA_DIR", "~/.local/share/lodestar",
            "Where local state lives: Kafka log dirs, PostgreSQL cluster, embedded "
            "ClickHouse, the engine's RocksDB stores."),
    Setting("LODESTAR_KAFKA_PORT", "9092",
            "Port of the local stack's broker; LODESTAR_KAFKA_BOOTSTRAP's default follows it."),
    Setting("LODESTAR_POSTGRES_PORT", "5433",
            "Port of the local stack's PostgreSQL; LODESTAR_POSTGRES_DSN's default follows it."),
    Setting("LODESTAR_KAFKA_BOOTSTRAP", "127.0.0.1:<LODESTAR_KAFKA_PORT>",
            "Kafka bootstrap servers. When set, `deploy/stack up` does not start a broker."),
    Setting("LODESTAR_POSTGRES_DSN",
            "postgresql://lodestar:lodestar@127.0.0.1:<LODESTAR_POSTGRES_PORT>/lodestar",
            "PostgreSQL DSN. When set, `deploy/stack up` does not start PostgreSQL."),
    Setting("LODESTAR_CLICKHOUSE_DSN", "chdb:///<LODESTAR_DATA_DIR>/clickhouse",
            "`chdb:///path` for the embedded engine, or `http(s)://user:pass@host:port/db` "
            "for a ClickHouse server."),
    Setting("LODESTAR_TOPIC_PREFIX", "lodestar",
            "Prefix of every topic name (`<prefix>.events`, …)."),
    Setting("LODESTAR_PARTITIONS", "8", "Partitions of each topic Lodestar creates."),
    Setting("LODESTAR_REPLICATION", "1", "Replication factor of the topics Lodestar creates."),
    Setting("LODESTAR_API_HOST", "127.0.0.1", "Address the HTTP API listens on."),
    Setting("LODESTAR_API_PORT", "8080", "Port of the HTTP API."),
    Setting("LODESTAR_WORKER_ID", "lodestar-engine",
            "Engine id: names the workers' consumer groups (<id>-profiles, the Faust app <id>) "
            "and changelog topics; workers sharing it share the work."),
    Setting("LODESTAR_WORKER_WEB_HOST", "127.0.0.1",
            "Address the worker's web server listens on (0.0.0.0 in containers)."),
    Setting("LODESTAR_WORKER_WEB_PORT", "6066",
            "Port of the worker's web server (health, analytics reads when ClickHouse "
            "is embedded)."),
    Setting("LODESTAR_WORKER_URL", "http://127.0.0.1:6066",
            "Where the CLI reaches a worker's web server."),
    Setting("LODESTAR_SINK_BATCH_SIZE", "5000",
            "Rows per ClickHouse insert at most; a batch is flushed when full …"),
    Setting("LODESTAR_CLICKHOUSE_TTL_DAYS", "0",
            "Days ClickHouse keeps raw events, deliveries, journey steps and membership "
            "changes (a TTL on each table); 0 keeps them forever. Daily rollups are kept."),
    Setting("LODESTAR_SINK_FLUSH_SECONDS", "1.0",
            "… or when its oldest row has waited this long."),
    Setting("LODESTAR_LOG_LEVEL", "INFO", "Log level of Lodestar's processes."),
    Setting("LODESTAR_REGION", "us-east-1",
            "Region written into application ARNs "
            "(`arn:aws:mobiletargeting:<region>:<account>:apps/<id>`)."),
    Setting("LODESTAR_ACCOUNT_ID", "000000000000",
            "Account id (12 digits) written into application ARNs."),
    Setting("LODESTAR_ADMIN_ACCESS_KEY_ID", "(unset)",
            "Access key id of an admin key (set together with the secret). When unset, "
            "`lodestar api` stores a generated admin key in PostgreSQL once; "
            "`lodestar keys admin` shows it. See docs/authentication.md."),
    Setting("LODESTAR_ADMIN_SECRET_ACCESS_KEY", "(unset)",
            "Secret access key of that admin key (at least 20 characters)."),
    Setting("LODESTAR_AUTH_CACHE_SECONDS", "30",
            "How long the API caches access keys and application ids it looked up; "
            "a revoked key or deleted app stops working within this time."),
    Setting("LODESTAR_SMTP_HOST", "127.0.0.1",
            "SMTP relay the email sender delivers to (the local stack's sink, Mailpit, SES …)."),
    Setting("LODESTAR_SMTP_PORT", "1025", "Port of the SMTP relay."),
    Setting("LODESTAR_SMTP_TLS", "none",
            "`none`, `starttls` (upgrade after connecting, usually port 587) or `tls` "
            "(implicit TLS, usually port 465)."),
    Setting("LODESTAR_SMTP_USERNAME", "(unset)",
            "User for SMTP AUTH (set together with the password); unset sends without AUTH."),
    Setting("LODESTAR_SMTP_PASSWORD", "(unset)", "Password for SMTP AUTH."),
    Setting("LODESTAR_SMTP_TIMEOUT_SECONDS", "10",
            "Timeout of connecting and of each SMTP command; a timeout is a soft bounce."),
    Setting("LODESTAR_SMTP_FROM_ADDRESS", "Lodestar <noreply@lodestar.localhost>",
            "From address of emails whose send request names none."),
    Setting("LODESTAR_SMTP_MESSAGE_ID_DOMAIN", "(domain of LODESTAR_SMTP_FROM_ADDRESS)",
            "Domain on the right of every `Message-ID` Lodestar writes."),
    Setting("LODESTAR_SMTP_TRACKING_BASE_URL", "http://127.0.0.1:<LODESTAR_API_PORT>",
            "Public base URL of the API as mail clients reach it; open pixels, click links "
            "and one-click unsubscribe URLs point at `<base>/t/…`."),
    Setting("LODESTAR_SMTP_TRACKING_SECRET", "(unset)",
            "Key (at least 32 characters) signing tracking tokens (HMAC-SHA256). Unset: "
            "no open/click tracking and no one-click unsubscribe URL. See docs/email.md."),
    *(Setting(env, default, help) for env, default, help in CHANNEL_SETTINGS_ROWS),
)

_DEFAULTS = {s.env: s.default for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Every setting Lodestar reads, as one immutable value."""

    data_dir: Path
    kafka_bootstrap: str
    postgres_dsn: str
    clickhouse_dsn: str
    topic_prefix: str
    partitions: int
    replication: int
    api_host: str
    api_port: int
    worker_id: str
    worker_web_host: str
    worker_web_port: int
    worker_url: str
    sink_batch_size: int
    sink_flush_seconds: float
    clickhouse_ttl_days: int
    log_level: str
    region: str
    account_id: str
    admin_access_key_id: str | None
    admin_secret_access_key: str | None
    auth_cache_seconds: float
    smtp_host: str
    smtp_port: int
    smtp_tls: str
    smtp_username: str | None
    smtp_password: str | None
    smtp_timeout_seconds: float
    smtp_from_address: str
    smtp_message_id_domain: str
    smtp_tracking_base_url: str
    smtp_tracking_secret: str | None
    channels: ChannelSettings = field(default_factory=ChannelSettings)
    """Providers of the SMS, push, voice and custom senders (``lodestar.channel_settings``)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Resolve settings from ``environ`` (default ``os.environ``).

        Raises ``SettingsError`` naming the variable when a value is malformed.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            value = env.get(name, "").strip()
            return value or _DEFAULTS[name]

        data_dir = Path(env.get("LODESTAR_DATA_DIR") or _default_data_dir()).expanduser()
        clickhouse = env.get("LODESTAR_CLICKHOUSE_DSN", "").strip() or (
            f"chdb://{(data_dir / 'clickhouse').resolve()}"
        )
        if not clickhouse.startswith(("chdb:", "http://", "https://")):
            raise SettingsError(
                "LODESTAR_CLICKHOUSE_DSN must start with chdb://, http:// or https://, "
                f"got {clickhouse!r}"
            )
        return cls(
            data_dir=data_dir,
            kafka_bootstrap=env.get("LODESTAR_KAFKA_BOOTSTRAP", "").strip()
            or f"127.0.0.1:{_positive_int(get, 'LODESTAR_KAFKA_PORT')}",
            postgres_dsn=env.get("LODESTAR_POSTGRES_DSN", "").strip()
            or "postgresql://lodestar:lodestar@127.0.0.1:"
            f"{_positive_int(get, 'LODESTAR_POSTGRES_PORT')}/lodestar",
            clickhouse_dsn=clickhouse,
            topic_prefix=get("LODESTAR_TOPIC_PREFIX"),
            partitions=_positive_int(get, "LODESTAR_PARTITIONS"),
            replication=_positive_int(get, "LODESTAR_REPLICATION"),
            api_host=get("LODESTAR_API_HOST"),
            api_port=_positive_int(get, "LODESTAR_API_PORT"),
            worker_id=get("LODESTAR_WORKER_ID"),
            worker_web_host=get("LODESTAR_WORKER_WEB_HOST"),
            worker_web_port=_positive_int(get, "LODESTAR_WORKER_WEB_PORT"),
            worker_url=get("LODESTAR_WORKER_URL").rstrip("/"),
            sink_batch_size=_positive_int(get, "LODESTAR_SINK_BATCH_SIZE"),
            sink_flush_seconds=_positive_float(get, "LODESTAR_SINK_FLUSH_SECONDS"),
            clickhouse_ttl_days=_ttl_days(get("LODESTAR_CLICKHOUSE_TTL_DAYS")),
            log_level=get("LODESTAR_LOG_LEVEL").upper(),
            region=_region(get("LODESTAR_REGION")),
            account_id=_account_id(get("LODESTAR_ACCOUNT_ID")),
            **_admin_key(env),
            auth_cache_seconds=_positive_float(get, "LODESTAR_AUTH_CACHE_SECONDS"),
            **_smtp(env, get),
            channels=_channels(env),
        )

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (tests use it for unique names)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def topic(self, topic: Topic) -> str:
        """Physical name of ``topic`` for this installation."""
        return topic_name(self.topic_prefix, topic)

    def dlq(self, topic: Topic) -> str:
        """Physical name of the dead-letter topic guarding ``topic``."""
        return dlq_name(self.topic_prefix, topic)

    @property
    def clickhouse_embedded(self) -> bool:
        """True when ClickHouse is the in-process chdb engine (one owning process)."""
        return self.clickhouse_dsn.startswith("chdb:")

    def describe(self) -> dict[str, str]:
        """Field name → value as text, with the password of DSNs and secrets masked
        (channel settings appear as ``channels.<name>``)."""
        out: dict[str, str] = {}
        for f in fields(self):
            if f.name == "channels":
                for cf in fields(self.channels):
                    raw = getattr(self.channels, cf.name)
                    out[f"channels.{cf.name}"] = "***" if (not cf.repr and raw) else str(raw)
                continue
            value = str(getattr(self, f.name))
            if f.name.endswith("_dsn"):
                value = _mask_password(value)
            elif f.name.endswith(_SECRET_FIELDS) and getattr(self, f.name):
                value = "***"
            out[f.name] = value
        return out


def _ttl_days(raw: str) -> int:
    if not raw.isdigit():
        raise SettingsError(
            f"LODESTAR_CLICKHOUSE_TTL_DAYS must be 0 (keep forever) or a number of days, "
            f"got {raw!r}")
    return int(raw)


def _channels(env: Mapping[str, str]) -> ChannelSettings:
    try:
        return ChannelSettings.from_env(env)
    except ChannelSettingsError as exc:
        raise SettingsError(str(exc)) from None


def _positive_int(get: _Getter, name: str) -> int:
    return int(_positive(get, name, int, "a whole number"))


def _positive_float(get: _Getter, name: str) -> float:
    return _positive(get, name, float, "a number")


def _positive(get: _Getter, name: str, convert: Callable[[str], float], kind: str) -> float:
    raw = get(name)
    try:
        value = convert(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9]{16,128}")


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise SettingsError(
            f"LODESTAR_REGION must be a region name such as us-east-1, got {value!r}"
        )
    return value


def _account_id(value: str) -> str:
    if not (len(value) == 12 and value.isascii() and value.isdigit()):
        raise SettingsError(f"LODESTAR_ACCOUNT_ID must be 12 digits, got {value!r}")
    return value


def _admin_key(env: Mapping[str, str]) -> dict[str, str | None]:
    akid = env.get("LODESTAR_ADMIN_ACCESS_KEY_ID", "").strip()
    secret = env.get("LODESTAR_ADMIN_SECRET_ACCESS_KEY", "").strip()
    if bool(akid) != bool(secret):
        raise SettingsError(
            "LODESTAR_ADMIN_ACCESS_KEY_ID and LODESTAR_ADMIN_SECRET_ACCESS_KEY must be set "
            "together (or both left unset to use the admin key stored in PostgreSQL)"
        )
    if akid and not _ACCESS_KEY_ID.fullmatch(akid):
        raise SettingsError(
            "LODESTAR_ADMIN_ACCESS_KEY_ID must be 16-128 letters and digits, "
            f"got {len(akid)} characters"
        )
    if secret and (len(secret) < 20 or any(c.isspace() for c in secret)):
        raise SettingsError(
            "LODESTAR_ADMIN_SECRET_ACCESS_KEY must be at least 20 characters without spaces"
        )
    return {"admin_access_key_id": akid or None, "admin_secret_access_key": secret or None}


_SECRET_FIELDS = ("_secret_access_key", "smtp_password", "tracking_secret")
SMTP_TLS_MODES = ("none", "starttls", "tls")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_MAIL_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _smtp(env: Mapping[str, str], get: _Getter) -> dict[str, object]:
    tls = get("LODESTAR_SMTP_TLS").lower()
    if tls not in SMTP_TLS_MODES:
        raise SettingsError(
            f"LODESTAR_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}, got {tls!r}")
    user = env.get("LODESTAR_SMTP_USERNAME", "").strip()
    password = env.get("LODESTAR_SMTP_PASSWORD", "")
    if bool(user) != bool(password):
        raise SettingsError(
            "LODESTAR_SMTP_USERNAME and LODESTAR_SMTP_PASSWORD must be set together")
    from_address = get("LODESTAR_SMTP_FROM_ADDRESS")
    match = re.search(r"@([^@>\s]+)>?$", from_address)
    if match is None or "\n" in from_address or "\r" in from_address:
        raise SettingsError(
            f"LODESTAR_SMTP_FROM_ADDRESS must be an email address, got {from_address!r}")
    domain = env.get("LODESTAR_SMTP_MESSAGE_ID_DOMAIN", "").strip() or match.group(1)
    if not _MAIL_DOMAIN.fullmatch(domain):
        raise SettingsError(
            f"LODESTAR_SMTP_MESSAGE_ID_DOMAIN must be a domain name, got {domain!r}")
    base = env.get("LODESTAR_SMTP_TRACKING_BASE_URL", "").strip() or (
        f"http://127.0.0.1:{_positive_int(get, 'LODESTAR_API_PORT')}")
    if not re.fullmatch(r"https?://[^\s\"'<>]+", base):
        raise SettingsError(
            f"LODESTAR_SMTP_TRACKING_BASE_URL must be an http(s) URL, got {base!r}")
    secret = env.get("LODESTAR_SMTP_TRACKING_SECRET", "").strip()
    if secret and len(secret) < 32:
        raise SettingsError("LODESTAR_SMTP_TRACKING_SECRET must be at least 32 characters")
    return {
        "smtp_host": get("LODESTAR_SMTP_HOST"),
        "smtp_port": _positive_int(get, "LODESTAR_SMTP_PORT"),
        "smtp_tls": tls,
        "smtp_username": user or None,
        "smtp_password": password or None,
        "smtp_timeout_seconds": _positive_float(get, "LODESTAR_SMTP_TIMEOUT_SECONDS"),
        "smtp_from_address": from_address,
        "smtp_message_id_domain": domain,
        "smtp_tracking_base_url": base.rstrip("/"),
        "smtp_tracking_secret": secret or None,
    }


def _mask_password(dsn: str) -> str:
    scheme, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest:
        return dsn
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else dsn


def settings_table_markdown() -> str:
    """The README's settings table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | `{s.default}` | {s.help} |" for s in SETTINGS]
    return "\n".join(rows)

