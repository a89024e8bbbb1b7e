"""Point-in-time recovery with pgBackRest: tdbctl drives it, it does not reimplement it.

    [backup]
    engine = "pgbackrest"          # pg_dump stays the default engine

    [backup.pgbackrest]
    repo = "/var/lib/pgbackrest"   # the repository (local path)

Layout: options (the [backup.pgbackrest] settings, checked), program (finding and running
pgBackRest as the data directory's owner, its JSON), server (the archiving settings a server has
and needs), instance (a restored data directory started on a free port, waited for, stopped), and
commands (setup, backup, list, verify, restore to a moment, drill), which the CLI calls.
"""
