"""Downstaging page callbacks (not built yet)."""
