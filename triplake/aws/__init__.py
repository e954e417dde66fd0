"""Thin, typed AWS helpers: clients are injected, so moto tests stay trivial (DESIGN.md §9)."""
