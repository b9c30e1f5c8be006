"""Survival page callbacks (not built yet)."""
