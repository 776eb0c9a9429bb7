"""The ledger: a double-entry book of accounts and transfers in integer satang.

TigerBeetle semantics: every event in a batch gets its own result code, an event
that fails changes nothing, and a transfer is idempotent by its client-chosen id.
"""
