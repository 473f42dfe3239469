"""Every top-level command, registered explicitly (no discovery). Command modules import only click at top
level; the work they call is imported when the command runs."""

ALL = []
