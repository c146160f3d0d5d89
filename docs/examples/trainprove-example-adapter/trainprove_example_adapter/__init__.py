"""An example suspect adapter package for trainprove (see docs/suspects.md, "Write your own adapter")."""
