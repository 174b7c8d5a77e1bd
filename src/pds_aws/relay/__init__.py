"""Relays: what they know of this PDS (facts.py), the watchdog function that keeps checking
(watchdog.py) and its construct (construct.py), side by side."""
