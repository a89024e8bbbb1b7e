"""Alembic environment: all the work is in tdbctl.migrate.environment, shared with the tests."""

from alembic import context

from tdbctl.migrate.environment import run_migrations

run_migrations(context)
