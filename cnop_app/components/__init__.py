"""Shared UI pieces: layout, form fields, number cells."""
