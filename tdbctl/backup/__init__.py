"""Verified backups and restores: `tdbctl backup`, `tdbctl backup list|verify`, `tdbctl restore`.

    from tdbctl.backup import commands
    result = commands.create(settings, to="/var/backups/tdbctl", keep=7)
    report = commands.verify(result.path, deep=True, settings=settings)

Layout: commands (the actions), store (the backup directory: naming, listing, pruning), manifest
(what a backup holds and its checksums), strategy (the per-dialect interface) with postgresql
(pg_dump/pg_restore) and sqlite (online backup API) behind it, pgtools (finding pg_dump, libpq
environment).
"""
