"""Loaders for local data-set files (filled in below)."""
