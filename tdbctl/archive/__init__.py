"""`tdbctl archive`: move aged rows out of the live tables into verified archives, and back.

commands.run runs the archive policies (tdbctl.schema.policies_of); restore.verify and
restore.restore check and undo batches; commands.list_batches reads the catalog. docs/archive.md
describes the file format and how each kind of policy treats a row's children.
"""
