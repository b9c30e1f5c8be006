"""Sign-in through the hospital's or sponsor's OpenID Connect provider (DASHBOARD_AUTH=oidc).

Authlib's Flask client does the protocol from the provider's discovery document: the
authorization code flow with PKCE (S256), state and nonce, and the ID token's checks (signature
by the provider's JWKS, issuer, audience = our client id, expiry). This module adds what is ours:
the settings, a same-site `next` path, the mapping file from token claims to role and sites, the
session (dashboard/auth/sessions.py) and the audit lines. docs/oidc.md documents all of it.

Routes (registered only when the process starts in oidc mode):
  GET  /sign-in        redirect to the provider (remembers a same-site `next` path)
  GET  /auth/callback  the provider's answer: code exchanged, ID token checked, claims mapped
  POST /sign-out       ends the dashboard session
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import flask
import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from joserfc.errors import JoseError
from markupsafe import escape

from dashboard import audit
from dashboard.access import ROLES, SITE_ID, USER_NAME, User
from dashboard.auth import AuthConfigError, refuse, sessions

CLIENT_NAME = "provider"
DISCOVERY_PATH = "/.well-known/openid-configuration"
DEFAULT_SCOPE = "openid profile email"
HTTP_TIMEOUT = 10                   # seconds for each call to the provider (discovery, token, JWKS)
CLOCK_LEEWAY = 60                   # seconds of clock difference allowed on exp, iat and nbf
ROUTES = ("/sign-in", "/auth/callback", "/sign-out")                # never a `next` to return to
ENDPOINTS = ("oidc_sign_in", "oidc_callback", "oidc_sign_out")     # reached without a session
NEXT_KEY = "oidc_next"
MODE = "oidc"

log = logging.getLogger(__name__)


class NoRole(Exception):
    """Valid claims that give no single role (or an investigator no site); the message says which."""


# --- the mapping file ----------------------------------------------------------------------------
def claim(claims: dict, name: str | list):
    """A claim by name; a dotted name ("realm_access.roles") or a list of keys reaches a nested one.
    A top-level claim whose name has dots ("https://example.org/roles") is found first."""
    if isinstance(name, str):
        if name in claims:
            return claims[name]
        keys = name.split(".")
    else:
        keys = name
    value = claims
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def claim_values(claims: dict, name) -> list[str]:
    """The strings of a claim that holds one string or a list of them (other entries ignored)."""
    value = claim(claims, name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _claim_name(value, where: str):
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(k, str) and k for k in value):
        return value
    raise AuthConfigError(f"{where}: a claim name (\"groups\", \"realm_access.roles\") or a list of keys")


def _string_map(value, where: str, check) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise AuthConfigError(f"{where}: an object from claim values to {check.__doc__}")
    for key, target in value.items():
        if not isinstance(target, str) or not check(target):
            raise AuthConfigError(f"{where}: {key!r} maps to {target!r}, not {check.__doc__}")
    return dict(value)


def _is_role(value: str) -> bool:
    """one of committee, investigator, sponsor"""
    return value in ROLES


def _is_site(value: str) -> bool:
    """a site id such as S01"""
    return bool(SITE_ID.fullmatch(value))


@dataclass(frozen=True)
class Mapping:
    """From an ID token's claims to a User: which claim names the user, which holds the roles (and
    what they mean here), which holds the sites. Several roles need a precedence list."""
    role_claim: str | list
    roles: dict[str, str]
    precedence: tuple[str, ...] = ()
    user_claim: str | list = "preferred_username"
    site_claim: str | list | None = None
    sites: dict[str, str] | None = field(default=None)     # claim value -> site id; None: values are site ids

    @classmethod
    def from_json(cls, data, where: str = "mapping") -> "Mapping":
        if not isinstance(data, dict):
            raise AuthConfigError(f"{where}: a JSON object with \"roles\" (and \"sites\", \"user_claim\")")
        unknown = set(data) - {"user_claim", "roles", "sites", "comment"}
        if unknown:
            raise AuthConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        roles = data.get("roles")
        if not isinstance(roles, dict) or set(roles) - {"claim", "values", "precedence"}:
            raise AuthConfigError(f"{where}: \"roles\" is an object with \"claim\", \"values\" and "
                                  f"optionally \"precedence\"")
        values = _string_map(roles.get("values"), f"{where}: roles.values", _is_role)
        precedence = roles.get("precedence", [])
        if (not isinstance(precedence, list) or len(set(precedence)) != len(precedence)
                or any(p not in ROLES for p in precedence)):
            raise AuthConfigError(f"{where}: roles.precedence is a list of distinct roles "
                                  f"({', '.join(ROLES)}), first wins")
        if precedence and set(values.values()) - set(precedence):
            missing = sorted(set(values.values()) - set(precedence))
            raise AuthConfigError(f"{where}: roles.precedence must name every mapped role; missing {missing}")
        sites = data.get("sites")
        site_claim = site_map = None
        if sites is not None:
            if not isinstance(sites, dict) or set(sites) - {"claim", "values"}:
                raise AuthConfigError(f"{where}: \"sites\" is an object with \"claim\" and optionally \"values\"")
            site_claim = _claim_name(sites.get("claim"), f"{where}: sites.claim")
            if "values" in sites:
                site_map = _string_map(sites["values"], f"{where}: sites.values", _is_site)
        return cls(role_claim=_claim_name(roles.get("claim"), f"{where}: roles.claim"), roles=values,
                   precedence=tuple(precedence),
                   user_claim=_claim_name(data.get("user_claim", "preferred_username"), f"{where}: user_claim"),
                   site_claim=site_claim, sites=site_map)

    @classmethod
    def load(cls, path: str | Path) -> "Mapping":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise AuthConfigError(f"DASHBOARD_OIDC_MAPPING: cannot read {path}: {e.strerror}") from None
        except ValueError as e:
            raise AuthConfigError(f"DASHBOARD_OIDC_MAPPING: {path} is not JSON: {e}") from None
        return cls.from_json(data, f"DASHBOARD_OIDC_MAPPING {path}")

    def role(self, claims: dict) -> str:
        mapped = {self.roles[v] for v in claim_values(claims, self.role_claim) if v in self.roles}
        if not mapped:
            raise NoRole("no role: none of its role claim values is mapped to a dashboard role")
        if len(mapped) == 1:
            return mapped.pop()
        if not self.precedence:
            raise NoRole(f"several roles ({', '.join(sorted(mapped))}) and the mapping gives no precedence")
        return next(r for r in self.precedence if r in mapped)

    def site_ids(self, claims: dict) -> tuple[str, ...]:
        if self.site_claim is None:
            return ()
        values = claim_values(claims, self.site_claim)
        if self.sites is not None:
            return tuple(self.sites[v] for v in values if v in self.sites)
        bad = [v for v in values if not _is_site(v)]
        if bad:
            raise NoRole(f"its site claim holds {bad[0][:40]!r}, not a site id")
        return tuple(values)

    def user(self, claims: dict) -> User:
        """The dashboard user these (already verified) claims describe, or NoRole."""
        name = claim(claims, self.user_claim)
        if not isinstance(name, str) or not USER_NAME.fullmatch(name):
            raise NoRole("its user-name claim is missing or not a user name (letters, digits, . _ @ -)")
        role = self.role(claims)
        sites = self.site_ids(claims) if role == "investigator" else ()
        if role == "investigator" and not sites:
            raise NoRole("an investigator account with no site")
        return User(name, role, sites)


# --- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    discovery_url: str
    issuer: str | None            # when set, the discovery document must name exactly this issuer
    client_id: str
    client_secret: str = field(repr=False)
    mapping: Mapping
    scope: str = DEFAULT_SCOPE
    redirect_uri: str | None = None


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _secret() -> str:
    path = _env("DASHBOARD_OIDC_CLIENT_SECRET_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise AuthConfigError(f"DASHBOARD_OIDC_CLIENT_SECRET_FILE: cannot read {path}: {e.strerror}") from None
    return _env("DASHBOARD_OIDC_CLIENT_SECRET")


def settings() -> Settings:
    """The oidc settings from the environment (docs/oidc.md), or AuthConfigError naming the one missing."""
    issuer = _env("DASHBOARD_OIDC_ISSUER").rstrip("/") or None
    discovery = _env("DASHBOARD_OIDC_DISCOVERY_URL") or (issuer + DISCOVERY_PATH if issuer else "")
    if not discovery:
        raise AuthConfigError("--auth oidc needs DASHBOARD_OIDC_ISSUER (or DASHBOARD_OIDC_DISCOVERY_URL)")
    if urlsplit(discovery).scheme not in ("https", "http"):
        raise AuthConfigError(f"DASHBOARD_OIDC_DISCOVERY_URL: {discovery!r} is not an http(s) URL")
    client_id = _env("DASHBOARD_OIDC_CLIENT_ID")
    if not client_id:
        raise AuthConfigError("--auth oidc needs DASHBOARD_OIDC_CLIENT_ID (the dashboard's client at the provider)")
    secret = _secret()
    if not secret:
        raise AuthConfigError("--auth oidc needs DASHBOARD_OIDC_CLIENT_SECRET or DASHBOARD_OIDC_CLIENT_SECRET_FILE")
    mapping_path = _env("DASHBOARD_OIDC_MAPPING")
    if not mapping_path:
        raise AuthConfigError("--auth oidc needs DASHBOARD_OIDC_MAPPING (the claims-to-role mapping file)")
    scope = _env("DASHBOARD_OIDC_SCOPES") or DEFAULT_SCOPE
    if "openid" not in scope.split():
        raise AuthConfigError(f"DASHBOARD_OIDC_SCOPES: {scope!r} lacks 'openid' (no ID token without it)")
    return Settings(discovery_url=discovery, issuer=issuer, client_id=client_id, client_secret=secret,
                    mapping=Mapping.load(mapping_path), scope=scope,
                    redirect_uri=_env("DASHBOARD_OIDC_REDIRECT_URI") or None)


# --- requests ------------------------------------------------------------------------------------
def page(status: int, title: str, text: str, link: tuple[str, str] | None = None) -> flask.Response:
    """A short page without data; `link` is (href, label) to a same-site path."""
    more = f"<p><a href='{escape(link[0])}'>{escape(link[1])}</a></p>" if link else ""
    body = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1><p>{escape(text)}</p>{more}</body></html>")
    return flask.Response(body, status=status, mimetype="text/html")


def safe_next(value: str | None) -> str:
    """A path on this site to return to after sign-in; anything else (another host, a scheme, '//'
    or a backslash that browsers read as one, the sign-in routes themselves) is the home page."""
    if (not isinstance(value, str) or not value.startswith("/") or value.startswith("//")
            or "\\" in value or len(value) > 2048 or any(ord(c) < 0x20 or ord(c) == 0x7f for c in value)):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ROUTES:
        return "/"
    return value


def request_user():
    """The before_request step in oidc mode: the session's user on flask.g, the sign-in routes
    let through, anything else refused (a page GET is sent to sign in first)."""
    request = flask.request
    if request.endpoint in ENDPOINTS:       # matched by path and method: GET /sign-out is not one
        return None
    user = sessions.current()
    if user is not None:
        flask.g.user = user
        return None
    if request.method == "GET" and not request.path.startswith(("/_dash-", "/assets/", "/_favicon")):
        target = request.full_path if request.query_string else request.path
        return flask.redirect("/sign-in?" + urlencode({"next": target}))
    return refuse(401, "Not signed in: sign in at /sign-in.")


def _failed(status: int, reason: str, user: str | None = None, **fields) -> flask.Response:
    audit.record("sign-in-failed", user=user, mode=MODE, reason=reason, **fields)
    return page(status, "Sign-in failed", "The identity provider's answer could not be accepted. "
                "Try signing in again; if it keeps failing, tell the registry's coordinator.",
                ("/sign-in", "Sign in again"))


def install(server: flask.Flask, config: Settings) -> None:
    """Register the provider with Authlib and the sign-in routes on the Flask server."""
    oauth = OAuth(server)
    client = oauth.register(
        CLIENT_NAME, client_id=config.client_id, client_secret=config.client_secret,
        server_metadata_url=config.discovery_url,
        client_kwargs={"scope": config.scope, "code_challenge_method": "S256", "default_timeout": HTTP_TIMEOUT})

    def provider_metadata() -> dict:
        """The discovery document; it must name its issuer, and with DASHBOARD_OIDC_ISSUER set, that one."""
        metadata = client.load_server_metadata()
        if not isinstance(metadata.get("issuer"), str) or not metadata["issuer"]:
            raise AuthConfigError(f"the discovery document at {config.discovery_url} names no issuer")
        if config.issuer and metadata["issuer"].rstrip("/") != config.issuer:
            raise AuthConfigError(f"the discovery document names issuer {metadata.get('issuer')!r}, "
                                  f"not DASHBOARD_OIDC_ISSUER {config.issuer!r}")
        return metadata

    def unreachable(e: Exception) -> flask.Response:
        log.error("OpenID Connect provider: %s", e)
        return page(502, "Sign-in unavailable", "The identity provider could not be reached or is "
                    "not configured as the dashboard expects; the error was logged. Try again later.")

    def sign_in():
        next_path = safe_next(flask.request.args.get("next"))
        redirect_uri = config.redirect_uri or flask.url_for("oidc_callback", _external=True)
        try:
            provider_metadata()
            response = client.authorize_redirect(redirect_uri)
        except (requests.RequestException, AuthConfigError, ValueError) as e:
            return unreachable(e)
        flask.session[NEXT_KEY] = next_path
        return response

    def callback():
        next_path = safe_next(flask.session.get(NEXT_KEY))
        if flask.request.args.get("error"):
            error = flask.request.args.get("error", "")[:64]
            return _failed(401, f"the provider answered {error}")
        try:
            issuer = provider_metadata()["issuer"]
            # Authlib checks aud only through azp unless told: the audience must hold our client id
            checks = {"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": config.client_id}}
            token = client.authorize_access_token(claims_options=checks, leeway=CLOCK_LEEWAY)
        except (requests.RequestException, AuthConfigError) as e:
            return unreachable(e)
        except (AuthlibBaseError, JoseError, ValueError) as e:
            log.warning("OpenID Connect sign-in refused: %s: %s", type(e).__name__, e)
            return _failed(401, f"{type(e).__name__}: {str(e)[:200]}")
        claims = token.get("userinfo")
        if not claims:
            return _failed(401, "the token response has no ID token")
        try:
            user = config.mapping.user(dict(claims))
        except NoRole as e:
            name = claim(claims, config.mapping.user_claim)
            name = name[:64] if isinstance(name, str) else None
            audit.record("sign-in-failed", user=name, mode=MODE, reason=str(e), sub=str(claims.get("sub"))[:64])
            return page(403, "No access", f"Your account has no role in this dashboard ({e}). "
                        "Ask the registry's coordinator to give it one at the identity provider.")
        sessions.start(user)
        audit.record("sign-in", user=user.name, mode=MODE, role=user.role, sites=list(user.sites),
                     sub=str(claims.get("sub"))[:64])
        return flask.redirect(next_path)

    def sign_out():
        user = sessions.current()
        sessions.end()
        audit.record("sign-out", user=user.name if user else None, mode=MODE)
        return page(200, "Signed out", "You are signed out of the dashboard. Your identity provider "
                    "may still hold its own session.", ("/sign-in", "Sign in again"))

    server.add_url_rule("/sign-in", "oidc_sign_in", sign_in, methods=["GET"])
    server.add_url_rule("/auth/callback", "oidc_callback", callback, methods=["GET"])
    server.add_url_rule("/sign-out", "oidc_sign_out", sign_out, methods=["POST"])
