"""DDL helpers: what migrations call (migration_ops) and the index deferral of bulk loads.

What differs between the dialects (locks, batched deletes, COPY, VACUUM) is in tdbctl.dialects.
"""
