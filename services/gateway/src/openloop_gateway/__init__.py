"""The edge gateway banks call: orchestrates a payment through identity, rules,
ledger and settlement under the bank's idempotency key."""
