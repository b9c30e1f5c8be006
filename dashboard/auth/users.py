"""The users file: local accounts (name, role, sites, argon2 password hash).

JSON, one object: {"users": {"NAME": {"role": "investigator", "sites": ["S01"],
"password": "$argon2id$..."}}}. `password` is absent for a user who signs in elsewhere (header
or OpenID Connect sign-in looks the name up here for role and sites). Written atomically with
mode 0600; read again when it changes on disk.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from dashboard.access import User


class UsersFileError(Exception):
    """The users file cannot be read or is malformed; the message names the file and the entry."""


def default_path() -> Path:
    """DASHBOARD_USERS, else ~/.config/hcc-registry/users.json: outside the code and data folders."""
    env = os.environ.get("DASHBOARD_USERS")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hcc-registry" / "users.json"


def _entry_user(name: str, entry) -> User:
    if not isinstance(entry, dict):
        raise UsersFileError(f"user {name!r}: an object with role and sites expected")
    sites = entry.get("sites") or []
    if not isinstance(sites, list):
        raise UsersFileError(f"user {name!r}: sites must be a list of site ids")
    try:
        return User(name, entry.get("role"), tuple(sites))
    except ValueError as e:
        raise UsersFileError(str(e)) from None


def read(path: Path) -> dict:
    """{name: entry} of the users file; {} when it does not exist."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsersFileError(f"users file {path}: {e.strerror or e}") from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise UsersFileError(f"users file {path}: not JSON ({e})") from None
    users = doc.get("users") if isinstance(doc, dict) else None
    if not isinstance(users, dict):
        raise UsersFileError(f'users file {path}: an object {{"users": {{...}}}} expected')
    for name, entry in users.items():
        _entry_user(name, entry)
    return users


def write(path: Path, users: dict) -> None:
    """Replace the users file atomically, readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"users": users}, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


_memo: dict = {}
_memo_lock = threading.Lock()


def load(path: Path | None = None) -> dict:
    """The users file's entries, read again only when the file changes (size, mtime, inode)."""
    path = Path(path) if path else default_path()
    try:
        st = path.stat()
        identity = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    except FileNotFoundError:
        identity = (str(path), None)
    with _memo_lock:
        if _memo.get("identity") == identity:
            return _memo["users"]
    users = read(path)
    with _memo_lock:
        _memo.update(identity=identity, users=users)
    return users


def find(name: str, path: Path | None = None) -> User | None:
    """The account of that name as a User (role and sites), or None."""
    entry = load(path).get(name) if isinstance(name, str) else None
    return None if entry is None else _entry_user(name, entry)
