"""Migrations: Alembic underneath, with tdbctl's ledger, locking and checks around it."""
