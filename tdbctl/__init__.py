"""tdbctl: the operations tool for the database behind AI conversation-training platforms."""

__version__ = "0.1.0"
