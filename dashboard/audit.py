"""The audit log: append-only JSON lines of who did what and when (docs/audit.md).

DASHBOARD_AUDIT_LOG names a file, or "-" (the default) for the console: the server's standard
output, which is what a container's log collector reads; in the export command, whose standard
output is the export itself, standard error. One line per event:

    {"time": "2026-12-07T09:17:11.123Z", "event": "download", "user": "ana", "role": "investigator", ...}

Events: sign-in, sign-in-failed, locked-out, sign-out (the sign-in modes), page-view (path,
snapshot, filters), download (figure, export, rows, snapshot, filters), export (the command line:
export, rows, snapshot, filters, the operating-system user), and the refusals download-refused and
export-refused.

Each line is one write() on a descriptor opened for appending (a file is opened again for every
event), so the lines of several threads and gunicorn workers never interleave and a log rotated by
renaming is followed at the next event. Values are JSON-escaped with every non-ASCII character as
\\uXXXX, so no value (a filter, a figure id, a path) can end its line or start another; a line is
at most MAX_LINE bytes (long values clipped; a line still too long carries its fields as one
clipped text, "clipped").

A line that cannot be written (disk full, permissions) is never lost silently: it is logged as an
error through `logging` (the server's standard error) with the whole event. `record` then lets the
request go on; `record_required`, used before data leaves the server (downloads, exports), raises
AuditError and the caller refuses.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import errno
import io
import json
import logging
import math
import os
import sys

from dashboard.access import User

RESERVED = ("time", "event", "user")
CLIP_CHARS = 256            # a longer string value (a crafted figure id or path) is cut to this
CLIP_ITEMS = 64             # a longer list value is cut to this many items
MAX_LINE = 4000             # bytes: under PIPE_BUF (4096), so a line written to a pipe is one atomic write

log = logging.getLogger(__name__)
_console = {"stream": "stdout"}


class AuditError(Exception):
    """An event that had to be recorded could not be written; the message says why (the log's path
    is in the error logged with it, not in a message a browser may show)."""


@contextlib.contextmanager
def console_on_stderr():
    """Within: the console log ("-") goes to standard error (a command whose standard output is its product)."""
    before = _console["stream"]
    _console["stream"] = "stderr"
    try:
        yield
    finally:
        _console["stream"] = before


def target() -> str:
    """The audit log's destination: a file path, or "-" for the console."""
    return os.environ.get("DASHBOARD_AUDIT_LOG", "").strip() or "-"


def _plain(value, depth: int = 0):
    """A JSON-safe copy: strings and lists clipped, numbers finite, dates as ISO text, anything else as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= CLIP_CHARS else value[:CLIP_CHARS] + f"...(+{len(value) - CLIP_CHARS} chars)"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return _plain(value.item(), depth)
    if depth < 4 and isinstance(value, dict):
        items = list(value.items())
        return {str(k)[:CLIP_CHARS]: _plain(v, depth + 1) for k, v in items[:CLIP_ITEMS]}
    if depth < 4 and isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        out = [_plain(v, depth + 1) for v in items[:CLIP_ITEMS]]
        return out + [f"...(+{len(items) - CLIP_ITEMS} items)"] if len(items) > CLIP_ITEMS else out
    return _plain(str(value), depth)


def _encode(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=True, allow_nan=False, separators=(", ", ": "))


def line(event: str, user, **fields) -> str:
    """The event's JSON line (ending in a newline). `user`: a User (name and role), a name, or None."""
    clash = [k for k in fields if k in RESERVED]
    if clash:
        raise ValueError(f"audit field(s) {clash} would overwrite the line's own")
    now = dt.datetime.now(dt.timezone.utc)
    doc = {"time": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
           "event": _plain(str(event)),
           "user": user.name if isinstance(user, User) else _plain(user)}
    if isinstance(user, User) and "role" not in fields:
        doc["role"] = user.role
    doc.update({k: _plain(v) for k, v in fields.items()})
    text = _encode(doc)
    if len(text) > MAX_LINE:        # too long even clipped: the fields as one clipped text
        head = {k: v for k, v in doc.items() if k in RESERVED or k == "role"}
        clipped = _encode({k: v for k, v in doc.items() if k not in head})
        while len(text) > MAX_LINE:         # escaping the text lengthens it: cut by what is over, again
            clipped = clipped[:max(0, len(clipped) - (len(text) - MAX_LINE) - 8)]
            text = _encode({**head, "clipped": clipped + "..."})
    return text + "\n"


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written != len(data):        # a short write (disk filling up): end the partial line so the next one stands alone
        try:
            os.write(fd, b"\n")
        except OSError:
            pass
        raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")


def _write(text: str) -> None:
    data = text.encode("ascii")
    where = target()
    if where == "-":
        stream = sys.stderr if _console["stream"] == "stderr" else sys.stdout
        try:
            fd = stream.fileno()
        except (AttributeError, ValueError, io.UnsupportedOperation):
            fd = None
        if fd is None:          # a stream without a descriptor (a test's capture): its own write
            stream.write(text)
            stream.flush()
            return
        stream.flush()          # what the process printed before the event comes before it
        _write_all(fd, data)
        return
    fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _attempt(event: str, user, fields: dict) -> str | None:
    """Write the event; on failure log it whole as an error and return the reason."""
    text = line(event, user, **fields)
    try:
        _write(text)
        return None
    except (OSError, ValueError, AttributeError) as e:     # ValueError, AttributeError: a closed or absent console
        reason = getattr(e, "strerror", None) or str(e)
    log.error("audit log %s cannot be written (%s); the event: %s", target(), reason, text.rstrip("\n"))
    return reason


def record(event: str, user, **fields) -> bool:
    """Append one event; False when it could not be written (then logged as an error, with the event)."""
    return _attempt(event, user, fields) is None


def record_required(event: str, user, **fields) -> None:
    """Append one event that must be on record before the request goes on (data leaving the
    server): AuditError when it could not be written (also logged as an error, with the event)."""
    reason = _attempt(event, user, fields)
    if reason is not None:
        raise AuditError(f"the audit log cannot be written ({reason})")
