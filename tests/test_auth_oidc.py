"""Sign-in through OpenID Connect (dashboard/auth/oidc.py) against a real provider on loopback.

The provider is oidc-provider-mock (a real OpenID Connect server built on Authlib's server side)
served over HTTP in a thread: the dashboard fetches its discovery document and JWKS and exchanges
codes at its token endpoint over the network, as with Keycloak or Entra ID. The browser's part is
played by the Flask test client (the dashboard) and `requests` (the provider's authorize form).

The mock issues only valid ID tokens. For the tokens it cannot issue (wrong audience, expired,
another issuer, another nonce, signed by another key) a hook on the provider's own Flask app
re-signs the ID token of its token response with the provider's own signing key (or a stranger's
key) after changing one claim, so exactly one check stands between the token and a session.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import flask
import pytest
import requests
import werkzeug.serving
from joserfc import jwt
from joserfc.jwk import RSAKey

oidc_provider_mock = pytest.importorskip("oidc_provider_mock")

from dashboard.access import User  # noqa: E402
from dashboard.auth import AuthConfigError, check_config  # noqa: E402
from dashboard.auth.oidc import Mapping, NoRole, safe_next  # noqa: E402
from dashboard.auth import sessions  # noqa: E402

CLIENT_ID = "registry-dashboard"
UPDATE = "/_dash-update-component"
BANNER = "..banner-count.children...banner-cutoff.children...filter-chips.children...clear-all-filters.style...cut-marker-text.children...cut-marker.style...shown-cut.data.."

# the mapping of tests: Keycloak's shape (realm roles nested, sites from group paths)
MAPPING = {
    "user_claim": "preferred_username",
    "roles": {"claim": "realm_access.roles",
              "values": {"registry-committee": "committee", "registry-investigator": "investigator",
                         "registry-sponsor": "sponsor"}},
    "sites": {"claim": "groups", "values": {"/registry/site-S01": "S01", "/registry/site-S02": "S02"}},
}


class Provider:
    """oidc-provider-mock served on 127.0.0.1 in a thread. `seen` records each request it gets
    (path, query, form, Authorization header); `forge`, when set, changes the claims of the next ID token it issues."""

    def __init__(self):
        self.app = oidc_provider_mock.app(require_nonce=True)
        self.seen: list[dict] = []
        self.forge = None           # (claims, own key) -> (claims, key to sign with), or None: no ID token
        self.app.before_request(self._record)
        self.app.after_request(self._reissue)
        self.server = werkzeug.serving.make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def _record(self):
        request = flask.request
        self.seen.append({"path": request.path, "args": request.args.to_dict(), "form": request.form.to_dict(),
                          "authorization": request.headers.get("Authorization")})

    def _reissue(self, response):
        if self.forge is None or flask.request.path != "/oauth2/token" or response.status_code != 200:
            return response
        own_key = RSAKey.import_key(flask.g.oidc_provider_mock_storage.jwk.as_dict(is_private=True))
        body = json.loads(response.get_data())
        token = jwt.decode(body["id_token"], own_key)
        forged = self.forge(dict(token.claims), own_key)
        if forged is None:
            del body["id_token"]
        else:
            body["id_token"] = jwt.encode(dict(token.header), forged[0], forged[1])
        response.set_data(json.dumps(body))
        self.forge = None
        return response

    def set_user(self, sub: str, claims: dict) -> None:
        """The provider's own API for a user's claims (PUT /users/<sub>)."""
        r = requests.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        assert r.status_code == 204, r.text

    def requests_to(self, path: str) -> list[dict]:
        return [r for r in self.seen if r["path"] == path]


@pytest.fixture(scope="module")
def provider():
    p = Provider()
    p.thread.start()
    yield p
    p.server.shutdown()
    p.thread.join(5)


@pytest.fixture
def audit_log(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("DASHBOARD_AUDIT_LOG", str(path))

    def lines(event=None):
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        return [e for e in entries if event is None or e["event"] == event]
    return lines


def oidc_env(monkeypatch, tmp_path, provider, mapping=MAPPING, **extra) -> None:
    mapping_file = tmp_path / "oidc-mapping.json"
    mapping_file.write_text(json.dumps(mapping))
    monkeypatch.setenv("DASHBOARD_AUTH", "oidc")
    monkeypatch.setenv("DASHBOARD_OIDC_ISSUER", provider.url)
    monkeypatch.setenv("DASHBOARD_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("DASHBOARD_OIDC_CLIENT_SECRET", "client-secret-of-the-tests")
    monkeypatch.setenv("DASHBOARD_OIDC_MAPPING", str(mapping_file))
    monkeypatch.setenv("DASHBOARD_SECRET_KEY", "session-key-of-the-tests-" + "x" * 32)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def make_app():
    """The dashboard as started with --auth oidc (its session key from DASHBOARD_SECRET_KEY)."""
    from dashboard.app import create_app
    return create_app()


@pytest.fixture
def dashboard(monkeypatch, tmp_path, provider, mini_root, audit_log):
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    oidc_env(monkeypatch, tmp_path, provider)
    return make_app()


def at_provider(auth_url: str, sub: str, action: str | None = None) -> str:
    """The person at the provider's authorize page: sees the form, signs in as `sub` (or denies).
    Returns the redirect back to the dashboard."""
    form = requests.get(auth_url, timeout=10)
    assert form.status_code == 200, form.text
    data = {"action": action} if action else {"sub": sub}
    answer = requests.post(auth_url, data=data, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def sign_in(client, sub: str, next_path: str = "/", edit_callback=None):
    """The whole code flow: /sign-in, the provider's form, /auth/callback. Returns the callback's response."""
    start = client.get("/sign-in?" + urlencode({"next": next_path}))
    assert start.status_code == 302, start.get_data(as_text=True)
    back = at_provider(start.headers["Location"], sub)
    if edit_callback:
        back = edit_callback(back)
    assert urlsplit(back).path == "/auth/callback"
    return client.get(local(back))


def banner_body() -> dict:
    return {"output": BANNER,
            "outputs": [{"id": i, "property": p} for i, p in (("banner-count", "children"), ("banner-cutoff", "children"),
                                                              ("filter-chips", "children"), ("clear-all-filters", "style"),
                                                              ("cut-marker-text", "children"), ("cut-marker", "style"), ("shown-cut", "data"))],
            "inputs": [{"id": "filter-state", "property": "data", "value": {"snapshot": "latest", "query": ""}}],
            "state": [], "changedPropIds": ["filter-state.data"]}


def request_user(client):
    """The user the dashboard's before_request put on flask.g for a page request."""
    with client:
        client.get("/_dash-layout")
        return flask.g.user


COMMITTEE = {"preferred_username": "chair", "realm_access": {"roles": ["registry-committee", "offline_access"]}}
INVESTIGATOR = {"preferred_username": "inv.one", "realm_access": {"roles": ["registry-investigator"]},
                "groups": ["/registry/site-S01", "/hospital/radiology"]}
SPONSOR = {"preferred_username": "sponsor@pharma.example", "realm_access": {"roles": ["registry-sponsor"]}}


# --- the code flow end to end ---------------------------------------------------------------------
def test_code_flow_with_pkce_state_and_nonce_signs_in(dashboard, provider, audit_log):
    provider.set_user("sub-chair", COMMITTEE)
    provider.seen.clear()
    client = dashboard.server.test_client()
    done = sign_in(client, "sub-chair", next_path="/survival?bclc=C")
    assert done.status_code == 302 and done.headers["Location"] == "/survival?bclc=C"

    authorize = provider.requests_to("/oauth2/authorize")[0]["args"]
    assert authorize["client_id"] == CLIENT_ID and authorize["response_type"] == "code"
    assert authorize["code_challenge_method"] == "S256" and authorize["state"] and authorize["nonce"]
    assert "openid" in authorize["scope"].split()
    [token_request] = provider.requests_to("/oauth2/token")
    token_form = token_request["form"]
    # RFC 7636 section 4.2: code_challenge = BASE64URL(SHA256(code_verifier)), without padding
    verifier = token_form["code_verifier"]
    assert base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() \
        == authorize["code_challenge"]
    assert 43 <= len(verifier) <= 128

    assert request_user(client) == User("chair", "committee")
    [line] = audit_log("sign-in")
    assert (line["user"], line["mode"], line["role"], line["sub"]) == ("chair", "oidc", "committee", "sub-chair")


def test_investigator_gets_the_sites_of_their_groups(dashboard, provider, audit_log):
    provider.set_user("sub-inv", INVESTIGATOR)
    client = dashboard.server.test_client()
    assert sign_in(client, "sub-inv").status_code == 302
    assert request_user(client) == User("inv.one", "investigator", ("S01",))
    assert audit_log("sign-in")[-1]["sites"] == ["S01"]


def test_sponsor_is_mapped(dashboard, provider):
    provider.set_user("sub-sponsor", SPONSOR)
    client = dashboard.server.test_client()
    assert sign_in(client, "sub-sponsor").status_code == 302
    assert request_user(client) == User("sponsor@pharma.example", "sponsor")


def test_callbacks_refused_before_sign_in_and_served_after(dashboard, provider):
    provider.set_user("sub-chair", COMMITTEE)
    client = dashboard.server.test_client()
    before = client.post(UPDATE, json=banner_body())
    assert before.status_code == 401 and "Not signed in" in before.get_data(as_text=True)
    assert client.get("/sign-out").status_code == 302       # only POST /sign-out is reached without a session
    page = client.get("/survival?bclc=C")
    assert page.status_code == 302 and page.headers["Location"] == "/sign-in?" + urlencode({"next": "/survival?bclc=C"})

    assert sign_in(client, "sub-chair").status_code == 302
    after = client.post(UPDATE, json=banner_body())
    assert after.status_code == 200, after.get_data(as_text=True)
    assert "banner-count" in after.get_json()["response"]
    assert client.get("/survival").status_code == 200


def test_sign_out_ends_the_session(dashboard, provider, audit_log):
    provider.set_user("sub-chair", COMMITTEE)
    client = dashboard.server.test_client()
    sign_in(client, "sub-chair")
    assert client.post(UPDATE, json=banner_body()).status_code == 200
    client.get("/sign-out")                                      # a link or an image cannot sign anyone out
    assert client.post(UPDATE, json=banner_body()).status_code == 200
    out = client.post("/sign-out")
    assert out.status_code == 200 and "signed out" in out.get_data(as_text=True)
    assert client.post(UPDATE, json=banner_body()).status_code == 401
    assert client.get("/").status_code == 302
    [line] = audit_log("sign-out")
    assert (line["user"], line["mode"]) == ("chair", "oidc")


def test_next_leaving_the_site_returns_home(dashboard, provider):
    provider.set_user("sub-chair", COMMITTEE)
    client = dashboard.server.test_client()
    assert sign_in(client, "sub-chair", next_path="//evil.example/x").headers["Location"] == "/"


@pytest.mark.parametrize("value, expected", [
    ("/survival?bclc=C", "/survival?bclc=C"), ("/", "/"), (None, "/"), ("", "/"),
    ("//evil.example", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/"),
    ("evil.example", "/"), ("/a\r\nSet-Cookie: x=1", "/"), ("javascript:alert(1)", "/"),
    ("/sign-in?next=/sign-in", "/"), ("/auth/callback?code=x", "/"),
])
def test_safe_next(value, expected):
    assert safe_next(value) == expected


# --- what the ID token must pass --------------------------------------------------------------------
def refused(client, provider, audit_log, forge, why: str):
    provider.set_user("sub-chair", COMMITTEE)
    provider.forge = forge
    answer = sign_in(client, "sub-chair")
    assert provider.forge is None, "the provider issued no token"
    assert answer.status_code == 401 and "Sign-in failed" in answer.get_data(as_text=True)
    assert "Traceback" not in answer.get_data(as_text=True)
    assert client.post(UPDATE, json=banner_body()).status_code == 401
    assert audit_log("sign-in") == []
    [line] = audit_log("sign-in-failed")
    assert line["mode"] == "oidc" and why in line["reason"], line
    return line


@pytest.mark.parametrize("audience", [
    {"aud": "another-application"},
    {"aud": ["another-application"]},
    # an authorized party naming us does not make us the audience (OIDC Core 3.1.3.7, steps 3 and 4)
    {"aud": "another-application", "azp": CLIENT_ID},
])
def test_id_token_for_another_audience_is_refused(dashboard, provider, audit_log, audience):
    def other_audience(claims, key):
        assert claims["aud"] in (CLIENT_ID, [CLIENT_ID])           # what the provider issued
        return {**claims, **audience}, key
    refused(dashboard.server.test_client(), provider, audit_log, other_audience, "'aud'")


def test_expired_id_token_is_refused(dashboard, provider, audit_log):
    def expired(claims, key):
        now = int(time.time())
        return {**claims, "iat": now - 7200, "exp": now - 3600}, key
    refused(dashboard.server.test_client(), provider, audit_log, expired, "expired")


def test_id_token_of_another_issuer_is_refused(dashboard, provider, audit_log):
    def other_issuer(claims, key):
        assert claims["iss"] == provider.url
        return {**claims, "iss": "http://127.0.0.1:1/realms/other"}, key
    refused(dashboard.server.test_client(), provider, audit_log, other_issuer, "iss")


def test_id_token_with_another_nonce_is_refused(dashboard, provider, audit_log):
    refused(dashboard.server.test_client(), provider, audit_log,
            lambda claims, key: ({**claims, "nonce": "replayed-nonce"}, key), "nonce")


def test_id_token_signed_by_another_key_is_refused(dashboard, provider, audit_log):
    stranger = RSAKey.generate_key(2048, private=True)
    refused(dashboard.server.test_client(), provider, audit_log,
            lambda claims, key: (claims, RSAKey.import_key({**stranger.as_dict(private=True), "kid": key.kid})),
            "Signature")


def test_token_response_without_id_token_is_refused(dashboard, provider, audit_log):
    refused(dashboard.server.test_client(), provider, audit_log, lambda claims, key: None, "no ID token")


def test_tampered_state_is_refused_before_the_code_is_used(dashboard, provider, audit_log):
    provider.set_user("sub-chair", COMMITTEE)
    provider.seen.clear()

    def tamper(url):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        return parts._replace(query=urlencode({"code": query["code"][0], "state": query["state"][0] + "x"})).geturl()
    client = dashboard.server.test_client()
    answer = sign_in(client, "sub-chair", edit_callback=tamper)
    assert answer.status_code == 401
    assert provider.requests_to("/oauth2/token") == []
    assert client.post(UPDATE, json=banner_body()).status_code == 401
    assert "MismatchingStateError" in audit_log("sign-in-failed")[0]["reason"]


def test_denied_at_the_provider(dashboard, provider, audit_log):
    client = dashboard.server.test_client()
    start = client.get("/sign-in")
    back = at_provider(start.headers["Location"], "", action="deny")
    answer = client.get(local(back))
    assert answer.status_code == 401
    assert "access_denied" in audit_log("sign-in-failed")[0]["reason"]


# --- claims that give no role ----------------------------------------------------------------------
@pytest.mark.parametrize("claims, why", [
    ({"preferred_username": "visitor", "realm_access": {"roles": ["offline_access"]}}, "no role"),
    ({"preferred_username": "visitor"}, "no role"),
    ({"preferred_username": "inv.two", "realm_access": {"roles": ["registry-investigator"]},
      "groups": ["/hospital/radiology"]}, "no site"),
    ({"preferred_username": "both", "realm_access": {"roles": ["registry-committee", "registry-sponsor"]}},
     "no precedence"),
    ({"realm_access": {"roles": ["registry-committee"]}}, "user-name claim"),
])
def test_claims_without_one_role_are_refused(dashboard, provider, audit_log, claims, why):
    provider.set_user("sub-x", claims)
    client = dashboard.server.test_client()
    answer = sign_in(client, "sub-x")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 403 and "has no role in this dashboard" in text
    assert client.post(UPDATE, json=banner_body()).status_code == 401
    [line] = audit_log("sign-in-failed")
    assert why in line["reason"] and line["mode"] == "oidc" and line["sub"] == "sub-x"
    assert audit_log("sign-in") == []


# --- the mapping file and the settings ----------------------------------------------------------------
def test_precedence_resolves_several_roles():
    mapping = Mapping.from_json({**MAPPING, "roles": {**MAPPING["roles"],
                                                      "precedence": ["sponsor", "investigator", "committee"]}})
    claims = {"preferred_username": "x", "realm_access": {"roles": ["registry-committee", "registry-sponsor"]}}
    assert mapping.user(claims) == User("x", "sponsor")
    with pytest.raises(NoRole):
        Mapping.from_json(MAPPING).user(claims)


def test_site_claim_without_a_map_holds_site_ids():
    mapping = Mapping.from_json({"roles": {"claim": "roles", "values": {"inv": "investigator"}},
                                 "sites": {"claim": "registry_sites"}, "user_claim": "email"})
    assert mapping.user({"email": "a@h.example", "roles": "inv", "registry_sites": ["S02", "S01"]}) \
        == User("a@h.example", "investigator", ("S01", "S02"))
    with pytest.raises(NoRole, match="not a site id"):
        mapping.user({"email": "a@h.example", "roles": ["inv"], "registry_sites": ["S01; drop"]})


def test_a_claim_name_with_dots_is_read_whole_first():
    mapping = Mapping.from_json({"roles": {"claim": "https://registry.example/roles", "values": {"c": "committee"}},
                                 "user_claim": "sub"})
    assert mapping.user({"sub": "u1", "https://registry.example/roles": ["c"]}) == User("u1", "committee")


@pytest.mark.parametrize("bad", [
    {},
    {"roles": {"claim": "roles", "values": {"x": "admin"}}},
    {"roles": {"claim": "roles", "values": {}}},
    {"roles": {"claim": "", "values": {"x": "sponsor"}}},
    {"roles": {"claim": "roles", "values": {"x": "sponsor", "y": "committee"}, "precedence": ["sponsor"]}},
    {"roles": {"claim": "roles", "values": {"x": "sponsor"}}, "sites": {"claim": "g", "values": {"a": "S 1"}}},
    {"roles": {"claim": "roles", "values": {"x": "sponsor"}}, "role_claim": "typo"},
])
def test_mapping_file_errors_are_refused_at_start(bad):
    with pytest.raises(AuthConfigError):
        Mapping.from_json(bad)


def test_settings_are_checked_at_start(monkeypatch, tmp_path, provider):
    oidc_env(monkeypatch, tmp_path, provider)
    check_config()
    monkeypatch.delenv("DASHBOARD_OIDC_CLIENT_ID")
    with pytest.raises(AuthConfigError, match="DASHBOARD_OIDC_CLIENT_ID"):
        check_config()
    oidc_env(monkeypatch, tmp_path, provider)
    monkeypatch.delenv("DASHBOARD_OIDC_CLIENT_SECRET")
    with pytest.raises(AuthConfigError, match="CLIENT_SECRET"):
        check_config()
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("DASHBOARD_OIDC_CLIENT_SECRET_FILE", str(secret))
    check_config()
    monkeypatch.setenv("DASHBOARD_OIDC_MAPPING", str(tmp_path / "missing.json"))
    with pytest.raises(AuthConfigError, match="cannot read"):
        check_config()


def test_client_secret_file_is_what_the_provider_receives(monkeypatch, tmp_path, provider, mini_root, audit_log):
    secret = tmp_path / "secret"
    secret.write_text("secret-from-a-file\n")
    oidc_env(monkeypatch, tmp_path, provider, DASHBOARD_OIDC_CLIENT_SECRET_FILE=str(secret))
    monkeypatch.delenv("DASHBOARD_OIDC_CLIENT_SECRET")
    provider.set_user("sub-chair", COMMITTEE)
    provider.seen.clear()
    client = make_app().server.test_client()
    assert sign_in(client, "sub-chair").status_code == 302
    # client_secret_basic (RFC 6749 section 2.3.1): id and secret in the Authorization header, not the form
    [token_request] = provider.requests_to("/oauth2/token")
    expected = base64.b64encode(f"{CLIENT_ID}:secret-from-a-file".encode()).decode()
    assert token_request["authorization"] == "Basic " + expected
    assert "client_secret" not in token_request["form"]


def test_discovery_naming_another_issuer_is_refused(monkeypatch, tmp_path, provider, audit_log):
    # the provider names itself after the Host it is asked by: asked as 127.0.0.1, it is not "localhost"
    port = urlsplit(provider.url).port
    oidc_env(monkeypatch, tmp_path, provider, DASHBOARD_OIDC_ISSUER=f"http://localhost:{port}",
             DASHBOARD_OIDC_DISCOVERY_URL=provider.url + "/.well-known/openid-configuration")
    client = make_app().server.test_client()
    answer = client.get("/sign-in")
    assert answer.status_code == 502 and "Traceback" not in answer.get_data(as_text=True)


def test_unreachable_provider_is_a_page_not_a_traceback(monkeypatch, tmp_path, provider):
    from conftest import free_port
    oidc_env(monkeypatch, tmp_path, provider, DASHBOARD_OIDC_ISSUER=f"http://127.0.0.1:{free_port()}")
    answer = make_app().server.test_client().get("/sign-in")
    assert answer.status_code == 502 and "could not be reached" in answer.get_data(as_text=True)


# --- docs/oidc.md ---------------------------------------------------------------------------------------
def test_docs_name_every_setting_and_their_mapping_examples_work():
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    docs = (root / "docs" / "oidc.md").read_text(encoding="utf-8")
    read = set(re.findall(r'"(DASHBOARD_OIDC_[A-Z_]+)"', (root / "dashboard" / "auth" / "oidc.py").read_text()))
    assert len(read) >= 8 and all(f"`{name}`" in docs for name in read), read
    examples = [json.loads(block) for block in re.findall(r"```json\n(\{\n.*?\n\})\n```", docs, flags=re.S)]
    keycloak, entra = (Mapping.from_json(e) for e in examples)
    assert keycloak.user({"preferred_username": "inv.one", "groups": ["/registry/sites/S02", "/staff"],
                          "realm_access": {"roles": ["registry-investigator", "default-roles-registry"]}}) \
        == User("inv.one", "investigator", ("S02",))
    assert entra.user({"preferred_username": "sp@pharma.example", "roles": ["Registry.Sponsor"]}) \
        == User("sp@pharma.example", "sponsor")
    with pytest.raises(NoRole, match="no precedence"):
        entra.user({"preferred_username": "x@h.example", "roles": ["Registry.Sponsor", "Registry.Committee"]})


def test_over_http_a_browser_session_signs_in_and_out(dashboard, provider, audit_log):
    """The same flow over real HTTP with cookies, the dashboard served by Werkzeug like `python app.py`."""
    provider.set_user("sub-inv", INVESTIGATOR)
    server = werkzeug.serving.make_server("127.0.0.1", 0, dashboard.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        browser = requests.Session()
        form = browser.get(base + "/survival", timeout=30)      # -> /sign-in -> the provider's form
        assert form.status_code == 200 and form.url.startswith(provider.url + "/oauth2/authorize?")
        assert parse_qs(urlsplit(form.url).query)["redirect_uri"] == [base + "/auth/callback"]
        page = browser.post(form.url, data={"sub": "sub-inv"}, timeout=30)     # -> callback -> /survival
        assert page.status_code == 200 and page.url == base + "/survival"
        cookie = next(c for c in browser.cookies if c.name == sessions.COOKIE)
        assert cookie.has_nonstandard_attr("HttpOnly") and cookie.domain.endswith("127.0.0.1")
        assert browser.post(base + UPDATE, json=banner_body(), timeout=30).status_code == 200
        assert browser.post(base + "/sign-out", timeout=30).status_code == 200
        assert browser.post(base + UPDATE, json=banner_body(), timeout=30).status_code == 401
    finally:
        server.shutdown()
        thread.join(5)
    assert [e["event"] for e in audit_log() if e["event"].startswith("sign")] == ["sign-in", "sign-out"]
