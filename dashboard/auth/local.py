"""Sign-in 'local': accounts of the users file, a sign-in form, signed-cookie sessions.

- GET /sign-in: the form (plain HTML with the Bootstrap CSS of assets/, no script). POST /sign-in:
  name, password, the session's CSRF token and `next` (a path of this site; anything else goes
  to /). A wrong password and an unknown name get the same answer in the same time; failures
  lock the name and slow the address down (dashboard/auth/lockout.py).
- POST /sign-out (with the CSRF token): the session ends for every copy of its cookie.
- Every other request needs a session whose account is still in the users file with the same
  password (its role and sites read from the file on each request): without one, a page is
  redirected to /sign-in?next=..., anything else (callbacks, scripts) answered 401. Files under
  /assets/ are served to anyone: the sign-in page's style sheets.
- Audit events (dashboard/audit.py): sign-in, sign-in-failed, locked-out, sign-out.
"""
from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import flask
import jinja2

from dashboard import audit
from dashboard.auth import lockout, sessions
from dashboard.auth import users as users_file

SIGN_IN = "/sign-in"
SIGN_OUT = "/sign-out"
ASSETS_ENDPOINT = "_dash_assets.static"
WRONG = "Wrong user name or password."
EXPIRED = "The sign-in form had expired: please sign in again."
SIGNED_OUT = "You are signed out."

log = logging.getLogger(__name__)
_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                                autoescape=True)


def check_config() -> None:
    """Refuse to start without an account that can sign in, or with settings that cannot work."""
    path = users_file.default_path()
    accounts = users_file.load(path)
    if not any(isinstance(e, dict) and e.get("password") for e in accounts.values()):
        raise ValueError(f"no account with a password in the users file {path}: add one with "
                         f"python -m dashboard users add NAME --role committee --users {path}")
    sessions.idle_seconds(), sessions.lifetime_seconds(), lockout.check_settings()
    sessions.secret_key()


def account(name: str):
    """The account as the users file has it now, with its password tag (sessions.current's lookup)."""
    try:
        user = users_file.find(name)
        return None if user is None else (user, users_file.password_tag(name))
    except users_file.UsersFileError as e:
        log.error("users file unreadable, request refused: %s", e)
        return None


def guard():
    """before_request in mode local: the session's user on flask.g, or the request refused."""
    request = flask.request
    if request.endpoint in (ASSETS_ENDPOINT, "local_sign_in", "local_sign_out"):
        return None
    user = sessions.current(account)
    if user is not None:
        flask.g.user = user
        return None
    if request.method in ("GET", "HEAD") and not request.path.startswith("/_"):
        target = request.path + ("?" + request.query_string.decode("latin-1") if request.query_string else "")
        return flask.redirect(SIGN_IN + "?" + urlencode({"next": target}), 302)
    return flask.Response("Not signed in (or the session ended): sign in again at /sign-in.\n", status=401,
                          mimetype="text/plain")


def safe_next(value) -> str:
    """`next` when it is a path of this site (not //host, not a scheme, no backslash or control
    character), else "/": a link to the sign-in page cannot send a person elsewhere."""
    if (not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or len(value) > 2048
            or "\\" in value or any(ord(c) < 33 or ord(c) == 127 for c in value)):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in (SIGN_IN, SIGN_OUT):
        return "/"
    return value


def _page(status: int = 200, message: str = "", level: str = "danger", name: str = "", next_: str = "/"):
    app = flask.current_app.extensions["dashboard_app"]
    body = _templates.get_template("sign_in.html").render(
        css=app.get_asset_url("bootstrap.min.css"), registry_css=app.get_asset_url("registry.css"),
        action=SIGN_IN, csrf=sessions.csrf_token(), next=next_, name=name, message=message, level=level)
    response = flask.Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _record(event: str, name: str, **fields) -> None:
    audit.record(event, user=name[:64], address=flask.request.remote_addr, mode="local", **fields)


def sign_in():
    from dashboard.auth import mode
    if mode() != "local":
        flask.abort(404)
    request = flask.request
    next_ = safe_next(request.values.get("next"))
    if request.method != "POST":
        if sessions.current(account) is not None:
            return flask.redirect(next_, 303)
        out = request.args.get("signed_out") == "1"
        return _page(message=SIGNED_OUT if out else "", level="success", next_=next_)
    name = (request.form.get("name") or "").strip()[:64]
    password = request.form.get("password") or ""
    if not sessions.csrf_ok(request.form.get("csrf")):
        return _page(400, EXPIRED, name=name, next_=next_)
    address = request.remote_addr or ""
    refused = lockout.blocked(name, address)
    if refused:
        _record("sign-in-failed", name, reason="locked" if refused[0] == "locked" else "address slowed down")
        return _page(429, refused[1], name=name, next_=next_)
    user = users_file.verify(name, password)
    if user is None:
        known = users_file.find(name) is not None
        if lockout.failed(name, address):
            _record("locked-out", name, minutes=round(lockout.window_seconds() / 60, 2))
            return _page(429, (lockout.blocked(name, address) or ("", WRONG))[1], name=name, next_=next_)
        _record("sign-in-failed", name, reason="wrong password" if known else "unknown user")
        return _page(401, WRONG, name=name, next_=next_)
    lockout.succeeded(name)
    sessions.start(user, users_file.password_tag(name))
    _record("sign-in", name)
    return flask.redirect(next_, 303)


def sign_out():
    from dashboard.auth import mode, refuse
    if mode() != "local":
        flask.abort(404)
    if not sessions.csrf_ok(flask.request.form.get("csrf")):
        return refuse(400, "Bad request: the sign-out form had expired; reload the page and sign out again.")
    user = sessions.current(account)
    sessions.end()
    if user is not None:
        _record("sign-out", user.name)
    return flask.redirect(SIGN_IN + "?signed_out=1", 303)


def install(app) -> None:
    """The sign-in and sign-out routes (answering 404 unless the mode is local)."""
    server = app.server
    server.extensions["dashboard_app"] = app
    server.add_url_rule(SIGN_IN, "local_sign_in", sign_in, methods=["GET", "POST"])
    server.add_url_rule(SIGN_OUT, "local_sign_out", sign_out, methods=["POST"])
