"""Signed-cookie sessions: the signed-in user in Flask's session cookie (itsdangerous-signed with
the server's secret key), with an idle timeout and an absolute lifetime.

Interface used by every sign-in mode that has a sign-in step (local, oidc):
  start(user, bind)  after a successful sign-in (bind: a tag the account must still match)
  current(lookup)    the User of this request's cookie, or None (absent, forged, expired, idle too
                     long, ended by sign-out, or no longer matching its account)
  end()              sign-out: the cookie, and every copy of it, is refused from then on
  csrf_token(), csrf_ok(value)   the form token kept in the session

The cookie: HttpOnly, SameSite=Lax, Secure when served over TLS (REGISTRY_FORCE_HTTPS=on or an
https request), no expiry date (it ends with the browser). Settings, read on each request:
DASHBOARD_IDLE_MINUTES (default 30), DASHBOARD_SESSION_HOURS (absolute lifetime, default 12).

The key: DASHBOARD_SECRET_KEY, else a random key in `secret_key` beside the users file, created
once with mode 0600 and read by every worker (a per-process key would sign out everyone whose
request reached another worker). Ended sessions are listed in `ended-sessions.json` there, each
until its lifetime is over, so sign-out holds in every worker.
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import stat
import tempfile
import threading
import time
from pathlib import Path

import flask
from flask.sessions import SecureCookieSessionInterface

from dashboard.access import User
from dashboard.auth import users as users_file

COOKIE = "registry_session"
KEY_FILE = "secret_key"
ENDED_FILE = "ended-sessions.json"
MIN_KEY = 32

log = logging.getLogger(__name__)


class SessionConfigError(ValueError):
    """A session setting or the key file cannot work; the message names it."""


def positive_setting(name: str, default: float) -> float:
    """A positive number from the environment variable `name` (default when unset); the sign-in
    settings (sessions, lock-out) are read with it."""
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        raise SessionConfigError(f"{name}={text!r}: a number expected") from None
    if not value > 0:
        raise SessionConfigError(f"{name}={text!r}: a positive number expected")
    return value


def idle_seconds() -> float:
    return positive_setting("DASHBOARD_IDLE_MINUTES", 30) * 60


def lifetime_seconds() -> float:
    return positive_setting("DASHBOARD_SESSION_HOURS", 12) * 3600


# --- the key --------------------------------------------------------------------------------------
_keys: dict = {}
_keys_lock = threading.Lock()


def secret_key() -> str:
    """The key that signs session cookies (module docstring). SessionConfigError when the key file
    is unsafe (readable by others, not ours, not a file) or cannot be made."""
    env = os.environ.get("DASHBOARD_SECRET_KEY", "")
    if env:
        if len(env) < MIN_KEY:
            raise SessionConfigError(f"DASHBOARD_SECRET_KEY: at least {MIN_KEY} characters")
        return env
    path = users_file.state_dir() / KEY_FILE
    with _keys_lock:
        if str(path) not in _keys:
            _keys[str(path)] = _key_file(path)
        return _keys[str(path)]


def _key_file(path: Path) -> str:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")      # mode 0600
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
            os.close(fd)
            os.link(tmp, path)          # creates the file whole, or fails if another process made it first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return _read_key(path)
    except OSError as e:
        raise SessionConfigError(f"session key file {path}: {e.strerror or e}") from None


def _read_key(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise SessionConfigError(f"session key file {path}: must be a file of this user with mode 0600 "
                                     f"(it is {stat.filemode(st.st_mode)}, uid {st.st_uid})")
        key = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if len(key) < MIN_KEY:
        raise SessionConfigError(f"session key file {path}: shorter than {MIN_KEY} characters")
    return key


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the key above (resolved on first use, so one app serves
    whichever mode the environment names) and the cookie flags of the module docstring. No session
    at all in modes without a sign-in step (none, header)."""

    def get_signing_serializer(self, app):
        from dashboard import auth
        if auth.mode() not in ("local", "oidc"):
            return None
        try:
            app.secret_key = secret_key()
        except SessionConfigError as e:
            log.error("no sessions: %s", e)
            return None
        return super().get_signing_serializer(app)

    def get_cookie_name(self, app) -> str:
        return COOKIE

    def get_cookie_secure(self, app) -> bool:
        from dashboard.security import force_https
        return force_https() or (flask.has_request_context() and flask.request.is_secure)

    def get_cookie_samesite(self, app) -> str:
        return "Lax"

    def get_cookie_httponly(self, app) -> bool:
        return True


def install(server) -> None:
    server.session_interface = CookieSessions()


# --- ended sessions -------------------------------------------------------------------------------
_ended: dict = {}
_ended_lock = threading.Lock()


def _ended_path() -> Path:
    return users_file.state_dir() / ENDED_FILE


def _read_ended(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def is_ended(sid: str) -> bool:
    """Whether the session was signed out (read again when the file changes)."""
    path = _ended_path()
    try:
        st = path.stat()
        identity = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    except FileNotFoundError:
        return False
    with _ended_lock:
        if _ended.get("identity") != identity:
            _ended.update(identity=identity, ids=_read_ended(path))
        return sid in _ended["ids"]


def _mark_ended(sid: str, until: float) -> None:
    path = _ended_path()
    with users_file.locked("sessions"):
        now = time.time()
        ids = {k: v for k, v in _read_ended(path).items() if isinstance(v, (int, float)) and v > now}
        ids[sid] = until
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ended-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(ids, f)
        os.replace(tmp, path)


# --- the session ----------------------------------------------------------------------------------
def start(user: User, bind: str = "") -> None:
    """Begin a fresh session for `user` (nothing of the session before sign-in is kept)."""
    flask.session.clear()
    now = int(time.time())
    flask.session.update(sid=secrets.token_urlsafe(18), started=now, seen=now, bind=bind,
                         user={"name": user.name, "role": user.role, "sites": list(user.sites)},
                         csrf=secrets.token_urlsafe(24))
    flask.session.permanent = False


def current(lookup=None) -> User | None:
    """The signed-in User of this request, or None (the cookie is then removed). `lookup(name)` ->
    (User, bind) | None gives the account as it is now (local: the users file), so a changed role
    or sites take effect at once and a removed account or changed password ends the session;
    without it, the role and sites given at sign-in (oidc: from the token's claims) are used."""
    s = flask.session
    entry, sid, started, seen = s.get("user"), s.get("sid"), s.get("started"), s.get("seen")
    if not (isinstance(entry, dict) and isinstance(sid, str) and isinstance(started, int) and isinstance(seen, int)):
        return None
    now = time.time()
    idle = idle_seconds()
    if now - seen > idle or now - started > lifetime_seconds() or is_ended(sid):
        s.clear()
        return None
    try:
        user = User(entry.get("name"), entry.get("role"), tuple(entry.get("sites") or ()))
    except (TypeError, ValueError):
        s.clear()
        return None
    if lookup is not None:
        found = lookup(user.name)
        if found is None or not hmac.compare_digest(str(found[1]), str(s.get("bind", ""))):
            s.clear()
            return None
        user = found[0]
    if now - seen >= min(60.0, idle / 4):       # not on every request: each refresh is a new cookie
        s["seen"] = int(now)
    return user


def end() -> None:
    """Sign out: this session id is refused by every worker until its lifetime is over."""
    sid, started = flask.session.get("sid"), flask.session.get("started")
    if isinstance(sid, str) and isinstance(started, int):
        _mark_ended(sid, started + lifetime_seconds())
    flask.session.clear()


def csrf_token() -> str:
    """The session's form token (made on first use)."""
    token = flask.session.get("csrf")
    if not isinstance(token, str):
        token = flask.session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok(value) -> bool:
    token = flask.session.get("csrf")
    return isinstance(token, str) and isinstance(value, str) and hmac.compare_digest(token, value)
