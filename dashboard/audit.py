"""The audit log: append-only JSON lines of who did what and when.

DASHBOARD_AUDIT_LOG names the file ("-" for standard output; unset: standard output). One line
per event: {"time": UTC ISO 8601, "event": ..., "user": ..., ...fields}. Events: sign-in,
sign-in-failed, locked-out, sign-out, page-view (path and filters), download and export (name
and row count).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys


def record(event: str, user: str | None, **fields) -> None:
    """Append one event. Each line is written with one write() on a file opened for appending, so
    lines of several processes never interleave."""
    line = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "event": event, "user": user, **fields}
    text = json.dumps(line, ensure_ascii=False, default=str, sort_keys=False) + "\n"
    target = os.environ.get("DASHBOARD_AUDIT_LOG", "-")
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
