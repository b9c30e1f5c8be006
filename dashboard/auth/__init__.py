"""Sign-in: who the user of a request is (a dashboard.access.User on flask.g.user).

Chosen at start by DASHBOARD_AUTH (python app.py --auth sets it): local | oidc | header | none.
- local: accounts of the users file, a sign-in form and signed-cookie sessions (local.py).
- none: the README's demo. Every request is the demo user (committee level, synthetic data cuts
  only, "demo: no sign-in" on every page).
- header: behind an authenticating reverse proxy. The user's name comes in a header
  (DASHBOARD_USER_HEADER, default X-Remote-User), accepted only from the proxy's addresses
  (DASHBOARD_TRUSTED_PROXIES, comma-separated addresses or networks); role and sites come from
  the users file. A request from any other address is refused, header or not.
- oidc: the hospital's or sponsor's OpenID Connect provider (dashboard/auth/oidc.py, docs/oidc.md):
  /sign-in, /auth/callback, /sign-out; role and sites from the ID token's claims by a mapping file.
A request without a user is refused before any page, layout or callback runs.
"""
from __future__ import annotations

import ipaddress
import logging
import os

import flask
from markupsafe import escape

from dashboard.access import DEMO_USER, User
from dashboard.auth import users as users_file

MODES = ("local", "oidc", "header", "none")
# WSGI environ key of a user set by code in this process (the cache warmer's test client): a Python
# object, which no HTTP request can put in the environ (headers arrive as HTTP_* strings)
IN_PROCESS_USER = "dashboard.in_process_user"
DEFAULT_USER_HEADER = "X-Remote-User"

log = logging.getLogger(__name__)


class AuthConfigError(Exception):
    """The sign-in configuration cannot work; the message says which setting and why."""


def mode() -> str:
    value = os.environ.get("DASHBOARD_AUTH", "none").strip().lower() or "none"
    if value not in MODES:
        raise AuthConfigError(f"DASHBOARD_AUTH={value!r}: one of {', '.join(MODES)}")
    return value


def trusted_proxies() -> list:
    text = os.environ.get("DASHBOARD_TRUSTED_PROXIES", "")
    networks = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise AuthConfigError(f"DASHBOARD_TRUSTED_PROXIES: {part!r} is not an address or network") from None
    return networks


def check_config() -> None:
    """Refuse to start on a configuration that cannot work (one line, no traceback)."""
    m = mode()
    if m == "header" and not trusted_proxies():
        raise AuthConfigError("--auth header needs the proxy's addresses in DASHBOARD_TRUSTED_PROXIES "
                              "(--trusted-proxy): a user header from anyone else would be believed")
    if m == "oidc":
        from dashboard.auth import oidc
        oidc.settings()
    if m in ("header", "local"):
        try:
            users_file.load()
        except users_file.UsersFileError as e:
            raise AuthConfigError(str(e)) from None
    if m == "local":
        from dashboard.auth import local
        try:
            local.check_config()
        except (users_file.UsersFileError, ValueError) as e:
            raise AuthConfigError(str(e)) from None


def refuse(status: int, text: str) -> flask.Response:
    """A refusal without data: plain text for the callback endpoints, a short page otherwise."""
    if flask.request.path.startswith("/_dash-"):
        return flask.Response(text + "\n", status=status, mimetype="text/plain")
    body = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{status}</title></head>"
            f"<body><p>{escape(text)}</p></body></html>")
    return flask.Response(body, status=status, mimetype="text/html")


def _header_user():
    remote = flask.request.remote_addr or ""
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        address = None
    if address is None or not any(address in net for net in trusted_proxies()):
        log.warning("request from %s refused: not a trusted proxy", remote)
        return refuse(403, "Forbidden: this dashboard is reached through its sign-in proxy.")
    header = os.environ.get("DASHBOARD_USER_HEADER", DEFAULT_USER_HEADER)
    name = (flask.request.headers.get(header) or "").strip()
    if not name:
        return refuse(401, "Not signed in: the proxy sent no user.")
    user = users_file.find(name)
    if user is None:
        log.warning("proxy user %.64r refused: not in the users file", name)
        return refuse(403, "Forbidden: this account has no access to the registry dashboard.")
    flask.g.user = user
    return None


def install(app) -> None:
    """Put the request's user on flask.g before anything else runs, or refuse the request."""
    server = app.server
    from dashboard.auth import local, sessions
    sessions.install(server)
    if mode() == "oidc":
        # the sign-in routes and the provider, read once at start; registered before local's routes,
        # which share their paths (and answer 404 outside mode local), so these are the ones matched
        from dashboard.auth import oidc
        oidc.install(server, oidc.settings())
    local.install(app)

    @server.before_request
    def _user():
        flask.g.user = None
        in_process = flask.request.environ.get(IN_PROCESS_USER)
        if isinstance(in_process, User):
            flask.g.user = in_process
            return None
        m = mode()
        if m == "none":
            flask.g.user = DEMO_USER
            return None
        if m == "header":
            return _header_user()
        if m == "local":
            return local.guard()
        if m == "oidc":
            from dashboard.auth import oidc
            return oidc.request_user()
        return refuse(503, f"Sign-in mode {m!r} is not available in this version.")
