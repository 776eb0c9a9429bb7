"""The auditor's tools: an offline verifier of a ledger database or export, and the exporter.

``python -m openloop_ledger.audit verify --database-url URL`` (or ``--export DIR``)
recomputes every leaf from the transfer rows, every checkpoint's root and
signature, and every balance from the transfers, and names the first row that
was changed, deleted, inserted or reordered.
"""
