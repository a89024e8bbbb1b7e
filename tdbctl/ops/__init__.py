"""Shared machinery of the data-changing commands: durations, run history, run locks."""
