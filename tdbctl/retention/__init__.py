"""The retention engine that `tdbctl cleanup` and `tdbctl archive` are two front doors to.

- selection: which policies a run takes (--policy, --table) and the cutoff each uses
  (--older-than, --before, else the policy's own age): one answer for both commands;
- request: what a run was asked, checked before anything touches the database;
- run: the one run driver: the claim, the run record, the time budget, progress;
- movers: the ways rows leave, chosen per policy and table (drop a partition, delete by pages or
  keys, archive to files or in place, archive a partition); cleanup's and archive's own modules
  implement them, on the one foreign-key walk of tdbctl.ops.cascade.
"""
