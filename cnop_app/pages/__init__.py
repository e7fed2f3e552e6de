"""Pages, one module per area."""
