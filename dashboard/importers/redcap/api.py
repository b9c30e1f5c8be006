"""Fetch a project's records and data dictionary from the REDCap API with PyCap; the token is read
from a file and never printed, logged or put in an error message."""
from __future__ import annotations

from pathlib import Path


def fetch(url: str, token_file: str | Path, progress: bool = False) -> tuple[str, str]:
    """Return (records CSV text, data dictionary CSV text) of the project at REDCap API `url`, using
    the token in `token_file`; raises ImportFailed naming the URL (never the token)."""
    raise NotImplementedError
