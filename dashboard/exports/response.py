"""Response exports (registered with @export; see dashboard/exports/__init__.py)."""
