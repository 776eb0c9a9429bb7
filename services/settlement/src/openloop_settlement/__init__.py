"""Settlement: the participants' net positions, built from the ledger's transfers, cut into
settlement cycles.

Every inter-participant transfer is an obligation between two banks: the bank
whose customer paid owes the platform, the bank whose customer was paid is owed.
Positions net those obligations, so they always sum to zero. Each obligation
belongs to the settlement cycle that was OPEN when it was recorded; a closed
cycle's positions are what the central bank settles (deferred net settlement).
"""
