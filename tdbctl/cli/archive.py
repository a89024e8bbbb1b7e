"""`tdbctl archive`: being written (see the issue); registers nothing yet."""

import typer


def register(root: typer.Typer) -> None:
    pass
