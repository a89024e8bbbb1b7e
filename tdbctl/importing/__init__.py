"""tdbctl import: bring a platform database built from the seeds under tdbctl."""
