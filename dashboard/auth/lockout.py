"""Failed sign-ins: an account locked after repeated failures, an address slowed down.

- An account name with DASHBOARD_LOCKOUT_FAILURES (default 5) failures within
  DASHBOARD_LOCKOUT_MINUTES (default 15) is locked for DASHBOARD_LOCKOUT_MINUTES: even the right
  password is refused meanwhile. Names that are no account are counted and locked the same way,
  so the answer never tells whether an account exists.
- An address with DASHBOARD_ADDRESS_FAILURES (default 20) failures within the same window gets no
  sign-in attempt until its failures are older than the window (guessing across many names).

The state is one JSON file beside the users file (`sign-in-failures.json`), changed under a file
lock, so every gunicorn worker counts the same failures.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from dashboard.auth import users as users_file
from dashboard.auth.sessions import positive_setting

STATE_FILE = "sign-in-failures.json"
MAX_ENTRIES = 10000         # names or addresses kept; the oldest go first


def window_seconds() -> float:
    return positive_setting("DASHBOARD_LOCKOUT_MINUTES", 15) * 60


def account_limit() -> int:
    return int(positive_setting("DASHBOARD_LOCKOUT_FAILURES", 5))


def address_limit() -> int:
    return int(positive_setting("DASHBOARD_ADDRESS_FAILURES", 20))


def check_settings() -> None:
    window_seconds(), account_limit(), address_limit()


def _path() -> Path:
    return users_file.state_dir() / STATE_FILE


def _read() -> dict:
    try:
        doc = json.loads(_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    return {k: doc.get(k) if isinstance(doc.get(k), dict) else {} for k in ("accounts", "addresses", "locked")}


def _recent(times, now: float, window: float) -> list:
    return [t for t in times if isinstance(t, (int, float)) and now - t < window] if isinstance(times, list) else []


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def blocked(name: str, address: str) -> tuple[str, str] | None:
    """(reason, message) when a sign-in attempt is refused before its password is looked at."""
    state, now, window = _read(), time.time(), window_seconds()
    until = state["locked"].get(name)
    if isinstance(until, (int, float)) and until > now:
        return "locked", (f"Too many failed sign-ins for this user name: sign-in is paused for it. "
                f"Try again in {_minutes(until - now)}.")
    recent = _recent(state["addresses"].get(address), now, window)
    if len(recent) >= address_limit():
        return "address", (f"Too many failed sign-ins from your address. "
                f"Try again in {_minutes(min(recent) + window - now)}.")
    return None


def failed(name: str, address: str) -> bool:
    """Count a failure; True when it locks the name."""
    with users_file.locked("sign-in-failures"):
        state, now, window = _read(), time.time(), window_seconds()
        failures = _recent(state["accounts"].get(name), now, window) + [now]
        state["accounts"][name] = failures
        state["addresses"][address] = _recent(state["addresses"].get(address), now, window) + [now]
        locked = len(failures) >= account_limit()
        if locked:
            state["locked"][name] = now + window
            state["accounts"].pop(name)
        _write(state, now, window)
    return locked


def succeeded(name: str) -> None:
    """A successful sign-in forgets the name's earlier failures."""
    with users_file.locked("sign-in-failures"):
        state = _read()
        if state["accounts"].pop(name, None) is not None:
            _write(state, time.time(), window_seconds())


def _write(state: dict, now: float, window: float) -> None:
    for key in ("accounts", "addresses"):
        kept = {k: v for k, v in state[key].items() if _recent(v, now, window)}
        state[key] = dict(sorted(kept.items(), key=lambda kv: max(kv[1]))[-MAX_ENTRIES:])
    locked = {k: v for k, v in state["locked"].items() if isinstance(v, (int, float)) and v > now}
    state["locked"] = dict(sorted(locked.items(), key=lambda kv: kv[1])[-MAX_ENTRIES:])
    path = _path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".failures-")        # mode 0600
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state, f)
    os.replace(tmp, path)
