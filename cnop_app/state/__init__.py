"""Reflex states: thin adapters over services. Identity always comes from the verified token."""
