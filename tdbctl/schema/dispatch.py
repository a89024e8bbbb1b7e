"""Domain ``dispatch``: the 911 operator training simulator (seed 000). Filled in by its own work item."""
