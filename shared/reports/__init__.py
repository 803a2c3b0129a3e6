"""Reports over the revenue ledger: pure aggregation (revenue), data access (store), the use case (service)."""
