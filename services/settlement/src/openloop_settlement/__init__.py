"""Settlement: the participants' net positions, built from the ledger's transfers.

Every inter-participant transfer is an obligation between two banks: the bank
whose customer paid owes the platform, the bank whose customer was paid is owed.
Positions net those obligations, so they always sum to zero.
"""
