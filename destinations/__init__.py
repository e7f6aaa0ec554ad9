"""Destinations: one module per marketing tool, a shared HTTP client, identifier hashing."""
