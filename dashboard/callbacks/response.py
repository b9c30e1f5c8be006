"""Response page callbacks (not built yet)."""
