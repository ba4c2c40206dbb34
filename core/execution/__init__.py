"""Orders out and reports in: the broker interface, the order manager, liquidation, reconciliation."""
