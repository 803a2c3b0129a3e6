"""What the revenue data layer reports when a conditional write meets another writer."""


class DuplicateEvent(Exception):
    """The event was processed already (or is being processed by a concurrent delivery)."""


class StaleUpdate(Exception):
    """Something read before the write changed meanwhile: reload and decide again."""
