"""The scheduled reconcile (domain rule 7): for each connected integration, check its key and webhook
endpoint (recreated when deleted, re-enabled when disabled) and read what was created or refunded
since the last sweep, with an overlap, so that revenue whose webhook never arrived is booked."""
