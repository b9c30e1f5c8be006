"""Callbacks: thin wiring from inputs to data -> analytics -> figures. Importing registers them."""
from dashboard.callbacks import (  # noqa: F401
    downloads, downstaging, enrollment, overview, response, safety, shell, survival,
)
from dashboard.callbacks import forest  # noqa: F401
