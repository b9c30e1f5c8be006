"""Callbacks: thin wiring from inputs to data -> analytics -> figures. Importing registers them."""
from dashboard.callbacks import downloads, enrollment, overview, shell  # noqa: F401
