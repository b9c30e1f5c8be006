"""Safety page callbacks (not built yet)."""
