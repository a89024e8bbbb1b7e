"""Which domains a database runs: only those are installed, migrated and looked after.

A platform that runs only the 911 dispatch trainer installs `dispatch` and needs no pgvector;
every command works with the domains a database has. The choice is ``[database] domains`` in
tdbctl.toml (or ``tdbctl migrate --domains``), read at migrate; the database records what it
holds in ``tdbctl.domains`` (docs/schema.md, "Domains").
"""

from __future__ import annotations

from tdbctl.errors import ConfigError, UsageError
from tdbctl.schemas import DOMAINS, EXTENSIONS, TOOL_SCHEMA

DOMAINS_TABLE = "domains"


def parse(value, source: str) -> tuple[str, ...]:
    """A list of domain names (or one comma-separated string) in DOMAINS' order; unknown refused."""
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{source}: a list of domains ({', '.join(DOMAINS)})")
    names = [n for n in names if n]
    unknown = [n for n in names if n not in DOMAINS]
    if unknown:
        raise (UsageError if source.startswith("--") else ConfigError)(
            f"{source}: unknown domain {unknown[0]!r} (domains: {', '.join(DOMAINS)})")
    if not names:
        raise (UsageError if source.startswith("--") else ConfigError)(f"{source}: name at least one domain")
    return tuple(d for d in DOMAINS if d in names)


def configured(settings, given: str | None = None) -> tuple[str, ...] | None:
    """The domains asked for: --domains, else tdbctl.toml's [database] domains, else None (all of
    them on a new database, the ones it has on an existing one)."""
    if given is not None:
        return parse(given, "--domains")
    value = settings.section("database").get("domains")
    return None if value is None else parse(value, "tdbctl.toml [database] domains")


def installed(conn) -> tuple[str, ...]:
    """The domains this database runs, as recorded in tdbctl.domains; a database migrated before
    that table existed was made for all four."""
    import sqlalchemy as sa

    if sa.inspect(conn).has_table(DOMAINS_TABLE, schema=TOOL_SCHEMA):
        recorded = {row[0] for row in conn.exec_driver_sql(f'SELECT domain FROM "{TOOL_SCHEMA}"."{DOMAINS_TABLE}"')}
        return tuple(d for d in DOMAINS if d in recorded)
    return DOMAINS


def tables_held(inspector, domain: str) -> list[str]:
    """The domain's tables (by the metadata) that its schema already holds, sorted."""
    from tdbctl.schema import metadata

    if domain not in inspector.get_schema_names():
        return []
    ours = {t.name for t in metadata.tables.values() if t.schema == domain}
    return sorted(ours & set(inspector.get_table_names(schema=domain)))


def present(conn) -> tuple[str, ...]:
    """The domains whose schema holds any of the domain's tables (a schema built otherwise)."""
    import sqlalchemy as sa

    inspector = sa.inspect(conn)
    return tuple(domain for domain in DOMAINS if tables_held(inspector, domain))


def extensions_for(domains) -> set[str]:
    return {name for domain in domains for name in EXTENSIONS.get(domain, ())}


def not_installed(domain: str, installed_domains) -> UsageError:
    return UsageError(f"domain {domain} is not installed in this database (it has "
                      f"{', '.join(installed_domains) or 'none'}): add it to [database] domains and run "
                      "`tdbctl migrate`")


def record(conn, names, revision: str | None) -> None:
    """Rows in tdbctl.domains for ``names``, installed at ``revision``."""
    from tdbctl.migrate.ledger import applied_by
    from tdbctl.schema.bookkeeping import domains

    conn.execute(domains.insert(), [{"domain": name, "installed_by": applied_by(), "revision": revision}
                                    for name in names])


def only_installed(items, installed_domains, *, explicit: bool, domain_of=lambda item: item) -> list:
    """``items`` (domain names, or what ``domain_of`` gives a domain or schema name for) less those
    of a domain the database lacks; when the user named them (``explicit``), that is an error."""
    lacking = [item for item in items if domain_of(item) in DOMAINS and domain_of(item) not in installed_domains]
    if lacking and explicit:
        raise not_installed(domain_of(lacking[0]), installed_domains)
    return [item for item in items if not any(item is other for other in lacking)]
