"""`tdbctl cleanup` as a library: apply the retention policies declared beside the tables.

    from tdbctl.cleanup import CleanupRequest, cleanup
    with open_database(settings) as db:
        report = cleanup(db, CleanupRequest.from_options(older_than="90d"))

Policies come from tdbctl.schema (``policies_of(metadata)``); nothing here names a table.
"""

from tdbctl.cleanup.batches import PolicyOutcome
from tdbctl.cleanup.request import CleanupRequest
from tdbctl.cleanup.run import COMMAND, CleanupReport, Observer, cleanup
from tdbctl.cleanup.listing import describe_policies, history

__all__ = [
    "COMMAND", "CleanupReport", "CleanupRequest", "Observer", "PolicyOutcome",
    "cleanup", "describe_policies", "history",
]
