"""The console entry point: `tdbctl --version` answers before Typer is imported (~75 ms of start)."""

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from tdbctl import __version__

        print(f"tdbctl {__version__}")
        return
    from tdbctl.cli import main as cli_main

    cli_main()
