"""The users file: local accounts (name, role, sites, argon2 password hash).

JSON, one object: {"users": {"NAME": {"role": "investigator", "sites": ["S01"],
"password": "$argon2id$..."}}}. `password` is absent for a user who signs in elsewhere (header
or OpenID Connect sign-in looks the name up here for role and sites). Written atomically with
mode 0600; read again when it changes on disk. Passwords are hashed with argon2id (argon2-cffi's
defaults) and rehashed at sign-in when those defaults change.

The folder of the users file also holds the sign-in state every server process shares: the
session key, ended sessions and failed sign-ins (dashboard/auth/sessions.py and local.py).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dashboard.access import User

MIN_PASSWORD = 12
MAX_PASSWORD = 1024         # longer input is refused before hashing (argon2 hashes any length, slowly)
_hasher = PasswordHasher()


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


def state_dir(path: Path | None = None) -> Path:
    """The folder of the users file: where the sign-in state shared by every worker lives."""
    return (Path(path) if path else default_path()).parent


@contextlib.contextmanager
def locked(name: str, path: Path | None = None):
    """An exclusive lock (flock) on <users folder>/<name>.lock, for read-modify-write of a shared
    file by several processes."""
    folder = state_dir(path)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)            # closing releases the lock


# --- passwords ----------------------------------------------------------------------------------
def check_password(password: str) -> None:
    """Refuse a password too short to resist guessing (or absurdly long)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"a password has at most {MAX_PASSWORD} characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


_dummy: dict = {}


def verify(name: str, password: str, path: Path | None = None) -> User | None:
    """The account if `password` is its password, else None. An unknown name, an account without a
    password and a wrong password cost the same argon2 verification, so the time taken does not
    tell whether the account exists. A hash made with older parameters is replaced."""
    path = Path(path) if path else default_path()
    entry = load(path).get(name) if isinstance(name, str) else None
    stored = entry.get("password") if isinstance(entry, dict) else None
    if not isinstance(stored, str) or not stored:
        if "hash" not in _dummy:
            _dummy["hash"] = _hasher.hash("not a password of anyone")
        stored, entry = _dummy["hash"], None
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if entry is None:
        return None
    if _hasher.check_needs_rehash(stored):
        _replace_hash(path, name, stored, hash_password(password))
    return _entry_user(name, entry)


def _replace_hash(path: Path, name: str, old: str, new: str) -> None:
    with locked("users", path):
        users = read(path)
        if users.get(name, {}).get("password") == old:      # unchanged since it was verified
            users[name]["password"] = new
            write(path, users)


def password_tag(name: str, path: Path | None = None) -> str | None:
    """A short fingerprint of the account's password hash (None: no such account): a session made
    with one password is not valid after the password changes."""
    import hashlib
    entry = load(path).get(name) if isinstance(name, str) else None
    if not isinstance(entry, dict):
        return None
    return hashlib.sha256(str(entry.get("password") or "").encode()).hexdigest()[:16]


# --- editing (python -m dashboard users) --------------------------------------------------------
def add(path: Path, name: str, role: str, sites, password: str | None, replace: bool = False) -> User:
    """Add an account (or replace it with replace=True); ValueError names what is wrong. Without a
    password (None) the account signs in only through the proxy or OpenID Connect."""
    user = User(name, role, tuple(sites or ()))
    entry = {"role": user.role, "sites": list(user.sites)}
    if password is not None:
        check_password(password)
        entry["password"] = hash_password(password)
    with locked("users", path):
        users = read(path)
        if name in users and not replace:
            raise ValueError(f"user {name!r} already exists in {path} (--replace to set role, sites and password)")
        users[name] = entry
        write(path, users)
    return user


def remove(path: Path, name: str) -> None:
    with locked("users", path):
        users = read(path)
        if name not in users:
            raise KeyError(f"no user {name!r} in {path}")
        del users[name]
        write(path, users)
