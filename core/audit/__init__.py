"""The hash-chained audit trail, one module per job.

kinds      the kinds of row (``kinds.SIGNAL`` ...)
canonical  the canonical JSON text of a row's details
row        the row model and the one hash formula
schema     tables, triggers, migrations, statements
writer     ``AuditLog``: appends rows through the store
verify     names tampered rows
export     JSON lines / CSV
journal    the former single module's names, re-exported
"""
