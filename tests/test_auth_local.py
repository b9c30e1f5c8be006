"""Sign-in 'local' (dashboard/auth/local.py, sessions.py, lockout.py, users.py): the form, the
sessions, lock-out, sign-out, the `users` command and the start-up checks, through the real Flask
app (dash_app's test client), a live `python app.py --auth local` and gunicorn with two workers.
Expected answers come from the issue's words (same message for an unknown user and a wrong
password, no open redirect, a signed-out cookie refused) and from argon2-cffi's own verifier."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import pytest
from argon2 import PasswordHasher
from flask.sessions import session_json_serializer
from itsdangerous import URLSafeTimedSerializer

from conftest import ROOT, free_port

COOKIE = "registry_session"
UPDATE = "/_dash-update-component"
PASSWORDS = {"carol": "carol's long passphrase", "ivan": "ivan's long passphrase", "sam": "sam's long passphrase"}
ROLES = {"carol": ("committee", []), "ivan": ("investigator", ["S01"]), "sam": ("sponsor", [])}
WRONG = "Wrong user name or password."


@pytest.fixture(scope="module")
def hashed_accounts():
    """The users file's entries, hashed once per module (argon2 takes ~0.2 s a hash here)."""
    ph = PasswordHasher()
    return {name: {"role": role, "sites": sites, "password": ph.hash(PASSWORDS[name])}
            for name, (role, sites) in ROLES.items()}


class Local:
    """Mode local over a users file in a test's own folder."""

    def __init__(self, app, folder):
        self.app, self.folder = app, folder
        self.users = folder / "users.json"

    def client(self, **kw):
        return self.app.server.test_client(**kw)

    def events(self, kind=None):
        path = self.folder / "audit.log"
        lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        return [e for e in lines if kind is None or e["event"] == kind]


@pytest.fixture
def local(monkeypatch, tmp_path, dash_app, mini_root, hashed_accounts):
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "users.json").write_text(json.dumps({"users": hashed_accounts}))
    for key in ("DASHBOARD_SECRET_KEY", "DASHBOARD_IDLE_MINUTES", "DASHBOARD_SESSION_HOURS", "REGISTRY_FORCE_HTTPS",
                "DASHBOARD_LOCKOUT_MINUTES", "DASHBOARD_LOCKOUT_FAILURES", "DASHBOARD_ADDRESS_FAILURES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DASHBOARD_AUTH", "local")
    monkeypatch.setenv("DASHBOARD_USERS", str(folder / "users.json"))
    monkeypatch.setenv("DASHBOARD_AUDIT_LOG", str(folder / "audit.log"))
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    return Local(dash_app, folder)


def form_token(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


def sign_in(client, name, password, next_="/", **kw):
    token = form_token(client.get("/sign-in", **kw).get_data(as_text=True))
    return client.post("/sign-in", data={"csrf": token, "name": name, "password": password, "next": next_}, **kw)


def layout_text(client) -> str:
    return client.get("/_dash-layout").get_data(as_text=True)


def sign_out_token(client) -> str:
    """The CSRF token of the navbar's sign-out form (the hidden input of the layout)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props", {})
            if node.get("type") == "Input" and props.get("name") == "csrf":
                found.append(props["value"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(json.loads(layout_text(client)))
    assert len(found) == 1
    return found[0]


def banner_body() -> dict:
    ids = (("banner-count", "children"), ("banner-cutoff", "children"), ("filter-chips", "children"),
           ("clear-all-filters", "style"), ("cut-marker-text", "children"), ("cut-marker", "style"),
           ("shown-cut", "data"))
    return {"output": "..banner-count.children...banner-cutoff.children...filter-chips.children...clear-all-filters.style...cut-marker-text.children...cut-marker.style...shown-cut.data..",
            "outputs": [{"id": i, "property": p} for i, p in ids],
            "inputs": [{"id": "filter-state", "property": "data", "value": {"snapshot": "latest", "query": ""}}],
            "state": [], "changedPropIds": ["filter-state.data"]}


def cookie(client) -> str | None:
    c = client.get_cookie(COOKIE)
    return c.value if c else None


# --- without a session ---------------------------------------------------------------------------
def test_without_a_session_pages_go_to_sign_in_and_everything_else_is_401(local):
    c = local.client()
    r = c.get("/survival?bclc=C")
    assert r.status_code == 302
    assert r.headers["Location"] == "/sign-in?next=%2Fsurvival%3Fbclc%3DC"
    for path in ("/_dash-layout", "/_dash-dependencies", "/_reload-hash"):
        r = c.get(path)
        assert (r.status_code, r.mimetype) == (401, "text/plain"), path
    suite = next(rule.rule for rule in local.app.server.url_map.iter_rules() if "component-suites" in rule.rule)
    assert c.get(suite.replace("<string:package_name>", "dash").replace("<path:fingerprinted_path>", "dash_renderer.js")
                 ).status_code == 401
    r = c.post(UPDATE, json=banner_body())          # a callback without a session
    assert r.status_code == 401 and "Not signed in" in r.get_data(as_text=True)
    assert "banner" not in r.get_data(as_text=True)
    assert c.get("/assets/bootstrap.min.css").status_code == 200        # the sign-in page's style sheet


def test_sign_in_opens_pages_and_callbacks_with_the_users_role(local):
    c = local.client()
    assert c.post(UPDATE, json=banner_body()).status_code == 401
    r = sign_in(c, "ivan", PASSWORDS["ivan"], next_="/survival?bclc=C")
    assert (r.status_code, r.headers["Location"]) == (303, "/survival?bclc=C")
    assert c.get("/survival?bclc=C").status_code == 200
    assert c.post(UPDATE, json=banner_body()).status_code == 200
    text = layout_text(c)
    assert "ivan · investigator (S01)" in text and "demo: no sign-in" not in text
    assert sign_out_token(c)
    [event] = local.events("sign-in")
    assert (event["user"], event["mode"], event["address"]) == ("ivan", "local", "127.0.0.1")


# --- wrong password, unknown user, lock-out ------------------------------------------------------
def answer(r, name: str) -> tuple[int, str]:
    """Status and page text without what differs by design (the echoed name, the form token)."""
    text = r.get_data(as_text=True).replace(f'value="{name}"', 'value="NAME"')
    return r.status_code, re.sub(r'name="csrf" value="[^"]+"', "", text)


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(local):
    c = local.client()
    wrong = sign_in(c, "carol", "not carol's password")
    unknown = sign_in(c, "nobody", "not carol's password")
    assert answer(wrong, "carol") == answer(unknown, "nobody")
    assert wrong.status_code == 401 and WRONG in wrong.get_data(as_text=True)
    assert cookie(c) is None or "user" not in session_of(local, c)
    reasons = {e["user"]: e["reason"] for e in local.events("sign-in-failed")}
    assert reasons == {"carol": "wrong password", "nobody": "unknown user"}
    echoed = sign_in(c, '"><script>alert(1)</script>', "a wrong password").get_data(as_text=True)
    assert "<script" not in echoed and "&lt;script&gt;" in echoed          # the name is shown escaped


def test_an_unknown_user_costs_an_argon2_verification_too(local):
    """The time taken does not tell whether an account exists: a verification against a dummy hash
    (without it an unknown name answers in about a millisecond, a known one in ~200 ms)."""
    c = local.client()
    token = form_token(c.get("/sign-in").get_data(as_text=True))

    def took(name):
        t0 = time.perf_counter()
        r = c.post("/sign-in", data={"csrf": token, "name": name, "password": "a wrong password"})
        assert r.status_code == 401
        return time.perf_counter() - t0
    took("nobody")                    # the dummy hash is made once per process
    known = sorted(took("carol") for _ in range(3))[1]
    unknown = sorted(took(f"nobody{i}") for i in range(3))[1]
    assert unknown > 0.4 * known, (unknown, known)


def test_lock_out_after_five_failures_then_unlocked_after_the_window(local, monkeypatch):
    window = 8.0
    monkeypatch.setenv("DASHBOARD_LOCKOUT_MINUTES", str(window / 60))
    c = local.client()
    for _ in range(4):
        assert sign_in(c, "carol", "a wrong password").status_code == 401
    locked = sign_in(c, "carol", "a wrong password")
    started = time.time()
    assert locked.status_code == 429
    message = re.search(r'id="sign-in-message"[^>]*>([^<]+)<', locked.get_data(as_text=True)).group(1)
    assert "Too many failed sign-ins" in message
    # locked: the right password is refused too, with the same message
    r = sign_in(c, "carol", PASSWORDS["carol"])
    assert r.status_code == 429 and message in r.get_data(as_text=True) and cookie_user(local, c) is None
    # an unknown name is locked the same way: the message does not tell whether the account exists
    for _ in range(4):
        sign_in(c, "nobody", "a wrong password")
    r = sign_in(c, "nobody", "a wrong password")
    assert answer(r, "nobody")[0] == 429 and message.split(" Try again")[0] in r.get_data(as_text=True)
    assert [e["user"] for e in local.events("locked-out")] == ["carol", "nobody"]
    assert (local.folder / "sign-in-failures.json").exists()          # on disk, shared by workers
    time.sleep(max(0.0, started + window + 0.5 - time.time()))
    r = sign_in(c, "carol", PASSWORDS["carol"])
    assert r.status_code == 303 and cookie_user(local, c) == "carol"


def test_many_failures_from_one_address_slow_it_down(local, monkeypatch):
    monkeypatch.setenv("DASHBOARD_ADDRESS_FAILURES", "3")
    c = local.client()
    for i in range(3):
        assert sign_in(c, f"guess{i}", "a wrong password").status_code == 401
    r = sign_in(c, "carol", PASSWORDS["carol"])
    assert r.status_code == 429 and "from your address" in r.get_data(as_text=True)
    other = local.client()
    r = sign_in(other, "carol", PASSWORDS["carol"], environ_overrides={"REMOTE_ADDR": "10.1.2.3"})
    assert r.status_code == 303


# --- sessions ---------------------------------------------------------------------------------------
def serializer(key: str) -> URLSafeTimedSerializer:
    """Flask's session cookie signer (flask.sessions.SecureCookieSessionInterface) with a given key."""
    return URLSafeTimedSerializer(key, salt="cookie-session", serializer=session_json_serializer,
                                  signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1})


def session_of(local, client) -> dict:
    key = (local.folder / "secret_key").read_text().strip()
    return serializer(key).loads(cookie(client))


def cookie_user(local, client):
    value = cookie(client)
    if not value:
        return None
    return (session_of(local, client).get("user") or {}).get("name")


def test_an_idle_session_ends(local, monkeypatch):
    monkeypatch.setenv("DASHBOARD_IDLE_MINUTES", str(3 / 60))
    c = local.client()
    sign_in(c, "carol", PASSWORDS["carol"])
    for _ in range(3):                       # in use: kept alive past the idle time
        assert c.get("/").status_code == 200
        time.sleep(1.2)
    time.sleep(3.5)
    assert c.get("/").status_code == 302
    assert c.post(UPDATE, json=banner_body()).status_code == 401


def test_a_session_ends_after_its_lifetime_even_in_use(local, monkeypatch):
    monkeypatch.setenv("DASHBOARD_SESSION_HOURS", str(4 / 3600))
    c = local.client()
    sign_in(c, "carol", PASSWORDS["carol"])
    codes = []
    for _ in range(6):
        codes.append(c.get("/").status_code)
        time.sleep(1)
    assert codes[0] == 200 and codes[-1] == 302


def test_forged_cookies_are_refused(local):
    c = local.client()
    sign_in(c, "sam", PASSWORDS["sam"])
    real = session_of(local, c)
    key = (local.folder / "secret_key").read_text().strip()
    as_carol = {**real, "user": {"name": "carol", "role": "committee", "sites": []}}

    def status(value):
        probe = local.client()
        probe.set_cookie(COOKIE, value)
        return probe.get("/").status_code
    # control: the same payload signed with the server's key is believed (so the forgery below is refused
    # for its signature alone) ...
    assert status(serializer(key).dumps(real)) == 200
    # ... signed with another key: refused
    assert status(serializer("another key of 64 characters " + "x" * 35).dumps(as_carol)) == 302
    assert status(serializer("another key of 64 characters " + "x" * 35).dumps(real)) == 302
    # the real cookie with its payload changed to carol's and its signature kept: refused
    payload, rest = cookie(c).lstrip(".").split(".", 1)
    text = json.dumps(as_carol, separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(zlib.compress(text)).rstrip(b"=").decode()
    assert status("." + forged + "." + rest) == 302
    assert status(cookie(c)[:-2] + ("AA" if not cookie(c).endswith("AA") else "BB")) == 302


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(local):
    c = local.client()
    sign_in(c, "carol", PASSWORDS["carol"])
    kept, sid = cookie(c), session_of(local, c)["sid"]
    token = sign_out_token(c)
    assert c.post("/sign-out", data={}).status_code == 400               # no CSRF token: refused ...
    assert c.get("/").status_code == 200                                 # ... and still signed in
    r = c.post("/sign-out", data={"csrf": token})
    assert (r.status_code, r.headers["Location"]) == (303, "/sign-in?signed_out=1")
    assert "You are signed out." in c.get("/sign-in?signed_out=1").get_data(as_text=True)
    assert c.get("/").status_code == 302
    replay = local.client()
    replay.set_cookie(COOKIE, kept)
    assert replay.get("/").status_code == 302
    assert replay.post(UPDATE, json=banner_body()).status_code == 401
    assert sid in json.loads((local.folder / "ended-sessions.json").read_text())     # on disk: every worker reads it
    assert [e["user"] for e in local.events("sign-out")] == ["carol"]


def test_sign_out_is_only_a_post(local):
    """A GET (a link or an image on another site) does not sign anyone out."""
    c = local.client()
    sign_in(c, "carol", PASSWORDS["carol"])
    c.get("/sign-out")              # not the sign-out route (a GET of it is the Dash shell's page)
    assert c.get("/").status_code == 200 and c.post(UPDATE, json=banner_body()).status_code == 200
    assert local.events("sign-out") == []


def test_a_removed_user_and_a_changed_role_take_effect_on_the_next_request(local):
    carol, ivan = local.client(), local.client()
    sign_in(carol, "carol", PASSWORDS["carol"])
    sign_in(ivan, "ivan", PASSWORDS["ivan"])
    assert "carol · committee" in layout_text(carol)
    doc = json.loads(local.users.read_text())
    doc["users"]["carol"]["role"] = "sponsor"             # the same password hash: the session goes on
    local.users.write_text(json.dumps(doc))
    assert "carol · sponsor" in layout_text(carol)
    out = subprocess.run([sys.executable, "-m", "dashboard", "users", "remove", "ivan", "--users", str(local.users)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert ivan.get("/").status_code == 302
    assert ivan.post(UPDATE, json=banner_body()).status_code == 401


def test_a_changed_password_ends_the_accounts_sessions(local):
    c = local.client()
    sign_in(c, "carol", PASSWORDS["carol"])
    out = subprocess.run([sys.executable, "-m", "dashboard", "users", "add", "carol", "--role", "committee",
                          "--password-stdin", "--replace", "--users", str(local.users)],
                         cwd=ROOT, input="a brand new passphrase\n", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert c.get("/").status_code == 302


# --- the form: next, CSRF ------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/evil.example",
                                    "javascript:alert(1)", "/%0d%0aSet-Cookie:x=1", "/\r\nSet-Cookie:x=1", "\t//evil",
                                    "evil.example", "/sign-out"])
def test_next_goes_only_to_a_path_of_this_site(local, target):
    r = sign_in(local.client(), "carol", PASSWORDS["carol"], next_=target)
    assert r.status_code == 303
    location = r.headers["Location"]
    assert location in ("/", target) and urllib.parse.urlsplit(location).netloc == ""
    assert location == "/" or target == "/%0d%0aSet-Cookie:x=1"     # percent-encoded: a path of this site


def test_next_keeps_a_page_and_its_filters(local):
    r = sign_in(local.client(), "carol", PASSWORDS["carol"], next_="/safety?bclc=B,C&by=bclc_stage")
    assert r.headers["Location"] == "/safety?bclc=B,C&by=bclc_stage"


def test_a_sign_in_without_the_forms_token_is_refused(local):
    fresh = local.client()
    r = fresh.post("/sign-in", data={"name": "carol", "password": PASSWORDS["carol"]})
    assert r.status_code == 400 and cookie_user(local, fresh) is None
    other = local.client()
    token_of_another_session = form_token(other.get("/sign-in").get_data(as_text=True))
    r = fresh.post("/sign-in", data={"csrf": token_of_another_session, "name": "carol", "password": PASSWORDS["carol"]})
    assert r.status_code == 400 and cookie_user(local, fresh) is None
    assert fresh.get("/").status_code == 302


def test_the_sign_in_page_and_signed_in_pages_carry_the_security_headers(local):
    c = local.client()
    for r in (c.get("/sign-in"), c.get("/survival")):          # the page, and the redirect to it
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    page = c.get("/sign-in").get_data(as_text=True)
    assert "<script" not in page and "style=" not in page and "http" not in page.replace('content="width', "")
    assert "unsafe-inline" not in c.get("/sign-in").headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    sign_in(c, "carol", PASSWORDS["carol"])
    for path in ("/", "/_dash-layout"):
        r = c.get(path)
        assert r.status_code == 200
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"


def test_the_session_cookie_flags(local, monkeypatch):
    c = local.client()
    r = c.get("/sign-in")
    flags = r.headers["Set-Cookie"]
    assert flags.startswith(COOKIE + "=") and "HttpOnly" in flags and "SameSite=Lax" in flags
    assert "Secure" not in flags and "Expires" not in flags         # plain http on loopback; ends with the browser
    tls = local.client()
    assert "Secure" in tls.get("/sign-in", base_url="https://localhost").headers["Set-Cookie"]
    monkeypatch.setenv("REGISTRY_FORCE_HTTPS", "on")                 # TLS ends at the proxy
    assert "Secure" in local.client().get("/sign-in").headers["Set-Cookie"]


# --- the key -----------------------------------------------------------------------------------------
def test_the_key_file_is_0600_and_the_same_for_every_process(tmp_path):
    users = tmp_path / "cfg" / "users.json"
    env = {**os.environ, "DASHBOARD_USERS": str(users), "DASHBOARD_AUTH": "local"}
    env.pop("DASHBOARD_SECRET_KEY", None)
    code = "from dashboard.auth import sessions; print(sessions.secret_key())"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]                           # started together: one creates the file, all read it
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and len(keys.pop()) >= 32
    mode = (users.parent / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_key_file_others_can_read_stops_the_start(tmp_path, monkeypatch, hashed_accounts):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": hashed_accounts}))
    key = tmp_path / "secret_key"
    key.write_text("k" * 64)
    key.chmod(0o644)
    out = run_app(["--auth", "local", "--users", str(users)])
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0
    assert "secret_key" in out.stderr and "0600" in out.stderr and "Traceback" not in out.stderr


# --- start-up ------------------------------------------------------------------------------------
def run_app(args, env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "app.py", "--port", str(free_port()), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_mode_local_without_an_account_does_not_start(tmp_path):
    users = tmp_path / "users.json"
    out = run_app(["--auth", "local", "--users", str(users)])
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert f"python -m dashboard users add NAME --role committee --users {users}" in out.stderr


def test_gunicorn_reads_the_same_settings_and_refuses_the_same_way(tmp_path):
    """`import app` (what gunicorn does for app:server) checks the sign-in settings of the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(DASHBOARD_AUTH="local", DASHBOARD_USERS=str(tmp_path / "users.json"))
    out = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "users add" in out.stderr and "Traceback" not in out.stderr


def test_bad_session_settings_do_not_start(tmp_path, hashed_accounts):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": hashed_accounts}))
    out = run_app(["--auth", "local", "--users", str(users)], {"DASHBOARD_IDLE_MINUTES": "soon"})
    assert out.returncode == 1 and "DASHBOARD_IDLE_MINUTES" in out.stderr and "Traceback" not in out.stderr


# --- mode none -----------------------------------------------------------------------------------
def test_the_demo_says_no_sign_in_on_every_page(dash_app, monkeypatch, mini_root):
    monkeypatch.setenv("DASHBOARD_AUTH", "none")
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    c = dash_app.server.test_client()
    text = c.get("/_dash-layout").get_data(as_text=True)        # the shell around every page
    assert "demo: no sign-in" in text and "Sign out" not in text
    for path in ("/", "/survival", "/safety"):
        assert c.get(path).status_code == 200
    assert c.get("/sign-in").status_code == 404
    assert COOKIE not in c.get("/").headers.get("Set-Cookie", "")


# --- the users command ----------------------------------------------------------------------------
def users_cmd(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "dashboard", "users", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_the_users_command(tmp_path):
    path = str(tmp_path / "cfg" / "users.json")
    out = users_cmd("add", "ivan", "--role", "investigator", "--site", "S01", "--site", "S03", "--password-stdin",
                    "--users", path, stdin="ivan's long passphrase\n")
    assert out.returncode == 0, out.stderr
    assert users_cmd("add", "sam", "--role", "sponsor", "--password-stdin", "--users", path,
                     stdin="sam's long passphrase\n").returncode == 0
    doc = json.loads(open(path).read())
    assert PasswordHasher().verify(doc["users"]["ivan"]["password"], "ivan's long passphrase")   # argon2-cffi's verifier
    assert doc["users"]["ivan"]["password"].startswith("$argon2id$")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    listing = users_cmd("list", "--users", path)
    assert listing.stdout.splitlines() == ["ivan\tinvestigator\tS01,S03\tpassword", "sam\tsponsor\t-\tpassword"]
    assert "argon2" not in listing.stdout + listing.stderr
    assert users_cmd("remove", "sam", "--users", path).returncode == 0
    assert users_cmd("list", "--users", path).stdout.splitlines() == ["ivan\tinvestigator\tS01,S03\tpassword"]


@pytest.mark.parametrize("args, stdin, says", [
    (("add", "bob", "--role", "boss", "--password-stdin"), "bob's long passphrase\n", "role 'boss'"),
    (("add", "bob", "--role", "investigator", "--password-stdin"), "bob's long passphrase\n", "needs at least one site"),
    (("add", "bob", "--role", "sponsor", "--password-stdin"), "too short\n", "at least 12 characters"),
    (("add", "bob", "--role", "sponsor", "--password-stdin"), "\n", "at least 12 characters"),
    (("add", "ivan", "--role", "sponsor", "--password-stdin"), "another long passphrase\n", "already exists"),
    (("add", "bad/name", "--role", "sponsor", "--password-stdin"), "bob's long passphrase\n", "user name"),
    (("remove", "nobody"), None, "no user 'nobody'"),
])
def test_the_users_command_refuses_with_exit_2_and_one_line(tmp_path, args, stdin, says):
    path = str(tmp_path / "users.json")
    assert users_cmd("add", "ivan", "--role", "investigator", "--site", "S01", "--password-stdin", "--users", path,
                     stdin="ivan's long passphrase\n").returncode == 0
    before = open(path).read()
    out = users_cmd(*args, "--users", path, stdin=stdin)
    assert out.returncode == 2 and says in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
    assert open(path).read() == before


def test_typed_passwords_must_match(monkeypatch):
    from dashboard.__main__ import read_password
    typed = iter(["first long passphrase", "other long passphrase"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))
    with pytest.raises(ValueError, match="differ"):
        read_password(from_stdin=False)


def test_a_hash_made_with_weaker_parameters_is_replaced_at_sign_in(local):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    doc = json.loads(local.users.read_text())
    doc["users"]["carol"]["password"] = weak.hash(PASSWORDS["carol"])
    local.users.write_text(json.dumps(doc))
    c = local.client()
    assert sign_in(c, "carol", PASSWORDS["carol"]).status_code == 303
    stored = json.loads(local.users.read_text())["users"]["carol"]["password"]
    assert not PasswordHasher().check_needs_rehash(stored) and PasswordHasher().verify(stored, PASSWORDS["carol"])
    assert c.get("/").status_code == 200                       # the session made at that sign-in still holds


# --- live servers -----------------------------------------------------------------------------------
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(url, data=None, cookie_value=None, json_body=None):
    """(status, headers, text) of one request, redirects not followed."""
    headers = {"Cookie": f"{COOKIE}={cookie_value}"} if cookie_value else {}
    body = None
    if json_body is not None:
        body, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
    elif data is not None:
        body = urllib.parse.urlencode(data).encode()
    try:
        with OPENER.open(urllib.request.Request(url, data=body, headers=headers), timeout=60) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def set_cookie(headers) -> str | None:
    for value in headers.get_all("Set-Cookie") or []:
        if value.startswith(COOKIE + "="):
            return value.split(";", 1)[0].split("=", 1)[1]
    return None


def http_sign_in(url, name, password) -> str:
    status, headers, text = http(url + "/sign-in")
    jar = set_cookie(headers)
    status, headers, _ = http(url + "/sign-in", {"csrf": form_token(text), "name": name, "password": password,
                                                 "next": "/"}, jar)
    assert status == 303, status
    return set_cookie(headers)


def start(cmd, env, port, log):
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/assets/registry.css", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("the server exited")
            time.sleep(0.25)
    raise TimeoutError("the server did not answer")


@pytest.fixture
def served(tmp_path, synthetic_root, hashed_accounts):
    """Start `python app.py` or gunicorn in mode local over a users file in tmp_path."""
    (tmp_path / "users.json").write_text(json.dumps({"users": hashed_accounts}))
    procs = []

    def serve(kind: str, flags=True):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
        env.update(REGISTRY_DATA=str(synthetic_root), PORT=str(port), REGISTRY_WARM="off",
                   DASHBOARD_AUDIT_LOG=str(tmp_path / "audit.log"))
        if kind == "app.py":
            cmd = [sys.executable, "app.py", "--port", str(port), "--auth", "local", "--users", str(tmp_path / "users.json")]
        else:                   # gunicorn: the environment is the configuration
            env.update(DASHBOARD_AUTH="local", DASHBOARD_USERS=str(tmp_path / "users.json"), WEB_CONCURRENCY="2")
            cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:server"]
        procs.append(start(cmd, env, port, open(tmp_path / f"{kind}.log", "w")))
        return f"http://127.0.0.1:{port}"
    yield serve
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_a_live_server_signs_in_serves_and_signs_out(served):
    url = served("app.py")
    status, headers, _ = http(url + "/survival")
    assert (status, headers["Location"]) == (302, "/sign-in?next=%2Fsurvival")
    assert http(url + UPDATE, json_body=banner_body())[0] == 401
    jar = http_sign_in(url, "carol", PASSWORDS["carol"])
    assert http(url + "/", cookie_value=jar)[0] == 200
    status, _, text = http(url + UPDATE, cookie_value=jar, json_body=banner_body())
    assert status == 200 and "patients" in text
    layout = http(url + "/_dash-layout", cookie_value=jar)[2]
    token = re.search(r'"value":"([^"]+)","type":"hidden","name":"csrf"', layout).group(1)
    status, headers, _ = http(url + "/sign-out", {"csrf": token}, jar)
    assert status == 303
    assert http(url + "/", cookie_value=jar)[0] == 302                  # the kept cookie, replayed
    assert http(url + UPDATE, cookie_value=jar, json_body=banner_body())[0] == 401


def test_gunicorn_workers_share_the_key_the_sign_outs_and_the_failures(served, tmp_path):
    """Two worker processes: a session made by one is valid in the other (one key on disk), a
    sign-out in one holds in both, and failures counted by both lock the name."""
    url = served("gunicorn")
    jar = http_sign_in(url, "carol", PASSWORDS["carol"])
    codes = [http(url + UPDATE, cookie_value=jar, json_body=banner_body())[0] for _ in range(12)]
    assert codes == [200] * 12                      # spread over both workers, each accepts the cookie
    layout = http(url + "/_dash-layout", cookie_value=jar)[2]
    token = re.search(r'"value":"([^"]+)","type":"hidden","name":"csrf"', layout).group(1)
    assert http(url + "/sign-out", {"csrf": token}, jar)[0] == 303
    codes = [http(url + UPDATE, cookie_value=jar, json_body=banner_body())[0] for _ in range(12)]
    assert codes == [401] * 12
    statuses = []
    for _ in range(6):
        status, headers, text = http(url + "/sign-in")
        statuses.append(http(url + "/sign-in", {"csrf": form_token(text), "name": "sam", "password": "wrong one"},
                             set_cookie(headers))[0])
    assert statuses == [401, 401, 401, 401, 429, 429], statuses
    events = [json.loads(x)["event"] for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert events.count("locked-out") == 1 and events.count("sign-out") == 1


# --- docs -------------------------------------------------------------------------------------------
def test_every_sign_in_setting_is_documented():
    """docs/sign-in.md (and docs/oidc.md for OpenID Connect) name every DASHBOARD_* variable the sign-in code and app.py read, and every
    flag of app.py and of `users add`."""
    code = "".join(p.read_text() for p in [*(ROOT / "dashboard" / "auth").glob("*.py"), ROOT / "app.py"])
    doc = (ROOT / "docs" / "sign-in.md").read_text() + (ROOT / "docs" / "oidc.md").read_text()
    variables = set(re.findall(r"DASHBOARD_[A-Z_]+", code))
    assert len(variables) >= 10 and {v for v in variables if f"`{v}`" not in doc} == set()
    flags = set(re.findall(r'add_argument\("(--[a-z-]+)"', (ROOT / "app.py").read_text()))
    users_flags = set(re.findall(r'add\.add_argument\("(--[a-z-]+)"', (ROOT / "dashboard" / "__main__.py").read_text()))
    assert {"--auth", "--users", "--trusted-proxy", "--user-header"} <= flags
    assert {f for f in flags | users_flags if f not in doc} <= {"--port", "--host", "--data"}
