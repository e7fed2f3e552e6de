"""Business rules in plain Python (no Reflex, no FastAPI). States and API routes are thin adapters."""
