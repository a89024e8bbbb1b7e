"""Where the database URL comes from, and the settings in tdbctl.toml.

Precedence: --database-url, TDB_DATABASE_URL, DATABASE_URL, tdbctl.toml in the current
directory, then the embedded default: a SQLite file ``tdbctl.db`` in the current directory.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tdbctl.errors import ConfigError

CONFIG_FILE = "tdbctl.toml"
DEFAULT_SQLITE_FILE = "tdbctl.db"
ENV_VARS = ("TDB_DATABASE_URL", "DATABASE_URL")
DIRECT_ENV = "TDB_DIRECT_URL"
SUPPORTED_BACKENDS = ("postgresql", "sqlite")

# The password runs to the last '@' of the URL's authority: a password holding a raw '@' is
# masked whole (such a URL is refused anyway, config.supported), never shown in part.
_USERINFO_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^\s]*)@(?=[^@\s]*(?:[/?\s'\"]|$))", re.I)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|pass)=)(?P<pw>[^&\s]*)", re.I)


def mask_secrets(text: str) -> str:
    """Hide passwords in anything that looks like a URL or a libpq key=value string."""
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:***@", text)
    text = _QUERY_PASSWORD.sub(lambda m: f"{m['head']}***", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.I)


@dataclass
class Settings:
    """The database to work on. ``text`` is the URL as configured (postgres:// spelt postgresql://).

    ``url``, SQLAlchemy's parsed form, is made on first use: SQLAlchemy's import is a quarter of a
    second that backup and restore spend after their pg_dump/pg_restore has started, not before.
    """

    text: str
    source: str
    file_settings: dict = field(default_factory=dict)
    direct_text: str | None = None
    """TDB_DIRECT_URL or [database] direct_url: the server itself, for what cannot go through a
    transaction pooler (REINDEX CONCURRENTLY, VACUUM, pg_dump)."""
    direct_source: str | None = None

    @property
    def direct(self) -> "Settings | None":
        if not self.direct_text:
            return None
        return Settings(text=self.direct_text, source=self.direct_source or DIRECT_ENV, file_settings=self.file_settings)

    @cached_property
    def url(self):
        return parse_url(self.text, self.source)

    @property
    def dialect(self) -> str:
        return backend_of(self.text)

    @property
    def masked_url(self) -> str:
        """The URL as users write it (postgresql://, not SQLAlchemy's postgresql+psycopg://), password
        masked; SQLite's with the file's absolute path."""
        if self.dialect == "sqlite":
            return mask_secrets(self.url.render_as_string(hide_password=True))
        return mask_secrets("postgresql://" + self.text.partition("://")[2])

    @property
    def password(self) -> str | None:
        if "url" in self.__dict__:
            return self.url.password
        try:
            password = urlsplit(self.text).password
        except ValueError:
            return None
        return unquote(password) if password is not None else None

    def section(self, name: str) -> dict:
        value = self.file_settings.get(name, {})
        return value if isinstance(value, dict) else {}


def load_file_settings(directory: Path) -> dict:
    path = directory / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def resolve(cli_url: str | None = None, *, directory: Path | None = None, environ=None) -> Settings:
    directory = directory or Path.cwd()
    environ = os.environ if environ is None else environ
    file_settings = load_file_settings(directory)
    raw, source = _pick_url(cli_url, environ, file_settings)
    if raw is None:
        raw = f"sqlite:///{directory / DEFAULT_SQLITE_FILE}"
        source = "default (SQLite file in the current directory)"
    direct, direct_source = _pick_direct(environ, file_settings)
    if direct is not None:
        direct = supported(direct, direct_source)
        if backend_of(direct) != backend_of(raw):
            raise ConfigError(f"{direct_source} is a {backend_of(direct)} URL, the database a {backend_of(raw)} one")
    return Settings(text=supported(raw, source), source=source, file_settings=file_settings,
                    direct_text=direct, direct_source=direct_source)


def _pick_direct(environ, file_settings) -> tuple[str | None, str | None]:
    if environ.get(DIRECT_ENV):
        return environ[DIRECT_ENV], DIRECT_ENV
    database = file_settings.get("database")
    if isinstance(database, dict) and database.get("direct_url"):
        return str(database["direct_url"]), f"{CONFIG_FILE} [database] direct_url"
    return None, None


def supported(raw: str, source: str) -> str:
    """The URL text, postgres:// spelt postgresql://, if it names a database tdbctl works with."""
    text = raw.strip()
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://"):]
    backend = backend_of(text)
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"unsupported database {backend!r} from {source}: tdbctl works with postgresql:// and sqlite:// URLs"
            if backend else f"malformed database URL from {source}: {mask_secrets(text)!r}"
        )
    authority = re.split(r"[/?]", text.partition("://")[2], maxsplit=1)[0]
    if authority.count("@") > 1:
        raise ConfigError(f"database URL from {source}: more than one '@' before the host; percent-encode "
                          "an '@' in the user name or password as %40")
    if backend == "postgresql":
        problem = _libpq_problem(text)
        if problem:
            raise ConfigError(f"database URL from {source}: {problem}")
    return text


# What libpq accepts, checked here so that a typo is a usage error before anything connects
# (libpq would only refuse it at connect time, or ignore a bad port until then).
LIBPQ_KEYWORDS = frozenset("""
    host hostaddr port dbname user password passfile require_auth channel_binding connect_timeout
    client_encoding options application_name fallback_application_name keepalives keepalives_idle
    keepalives_interval keepalives_count tcp_user_timeout replication gssencmode sslmode requiressl
    sslnegotiation sslcompression sslcert sslkey sslkeylogfile sslpassword sslcertmode sslrootcert sslcrl
    sslcrldir sslsni requirepeer ssl_min_protocol_version ssl_max_protocol_version krbsrvname gsslib
    gssdelegation service target_session_attrs load_balance_hosts min_protocol_version max_protocol_version
    oauth_issuer oauth_client_id oauth_client_secret oauth_scope
""".split())
LIBPQ_CHOICES = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
}


def _libpq_problem(text: str) -> str | None:
    from urllib.parse import parse_qsl

    _, _, rest = text.partition("://")
    location, _, query = rest.partition("?")
    hosts = location.rsplit("@", 1)[-1].split("/", 1)[0]
    ports = [_port_of(h) for h in hosts.split(",") if h]
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        return "its query part is not key=value pairs"
    for key, value in pairs:
        if key not in LIBPQ_KEYWORDS:
            return f"unknown connection parameter {key!r}"
        if key in LIBPQ_CHOICES and value not in LIBPQ_CHOICES[key]:
            return f"{key}={value!r} is not one of {', '.join(LIBPQ_CHOICES[key])}"
        if key == "port":
            ports += value.split(",")
    for port in ports:
        if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            return f"port {port!r} is not a port number (1-65535)"
    return None


def _port_of(host: str) -> str:
    if host.startswith("["):  # [IPv6]:port
        return host.partition("]")[2].lstrip(":")
    return host.rpartition(":")[2] if ":" in host else ""


def backend_of(text: str) -> str:
    """postgresql, sqlite, ...: the URL's scheme without its driver."""
    scheme, found, _ = text.partition("://")
    return scheme.split("+", 1)[0].lower() if found else ""


def with_driver(text: str) -> str:
    """A postgresql URL with psycopg 3 as its driver, whatever driver it named."""
    _, _, rest = text.partition("://")
    return f"postgresql+psycopg://{rest}"


def _pick_url(cli_url, environ, file_settings) -> tuple[str | None, str]:
    if cli_url:
        return cli_url, "--database-url"
    for name in ENV_VARS:
        if environ.get(name):
            return environ[name], name
    file_url = file_settings.get("database", {}).get("url") if isinstance(file_settings.get("database"), dict) else None
    if file_url:
        return file_url, CONFIG_FILE
    return None, ""


def parse_url(raw: str, source: str):
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = supported(raw, source)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ConfigError(f"malformed database URL from {source}: {mask_secrets(text)!r}") from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).expanduser().absolute()))
    return url
