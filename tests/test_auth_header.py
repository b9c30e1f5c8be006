"""Sign-in 'header' (dashboard/auth/__init__.py): behind an authenticating proxy, the user header is
believed only from the proxy's addresses, and only for a name in the users file. Through the real
Flask app (dash_app's test client; REMOTE_ADDR set per request) and `python app.py`."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from access_support import ACCOUNTS, write_users
from conftest import ROOT, free_port

PROXY = "10.0.0.7"
UPDATE = "/_dash-update-component"


@pytest.fixture
def header(monkeypatch, tmp_path, dash_app, mini_root):
    users = tmp_path / "users.json"
    write_users(users, ACCOUNTS)
    monkeypatch.setenv("DASHBOARD_AUTH", "header")
    monkeypatch.setenv("DASHBOARD_TRUSTED_PROXIES", f"{PROXY},192.168.50.0/24")
    monkeypatch.setenv("DASHBOARD_USERS", str(users))
    monkeypatch.delenv("DASHBOARD_USER_HEADER", raising=False)
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    return dash_app.server.test_client()


def get(client, path, address, **headers):
    return client.get(path, headers=headers, environ_overrides={"REMOTE_ADDR": address})


def test_the_proxys_user_is_signed_in_with_the_role_of_the_users_file(header):
    r = get(header, "/_dash-layout", PROXY, **{"X-Remote-User": "investigator"})
    assert r.status_code == 200
    text = r.get_data(as_text=True)
    assert "investigator · investigator (S01)" in text
    assert "Sign out" not in text and "demo: no sign-in" not in text      # the proxy signs out, not the app
    assert get(header, "/", "192.168.50.9", **{"X-Remote-User": "sponsor"}).status_code == 200    # a network
    assert "Set-Cookie" not in r.headers                                   # no session in this mode


def test_a_user_header_from_an_untrusted_address_is_refused(header):
    for address in ("127.0.0.1", "10.0.0.8", "192.168.51.1"):
        r = get(header, "/", address, **{"X-Remote-User": "committee"})
        assert r.status_code == 403 and "sign-in proxy" in r.get_data(as_text=True), address
        r = header.post(UPDATE, json={}, headers={"X-Remote-User": "committee"},
                        environ_overrides={"REMOTE_ADDR": address})
        assert r.status_code == 403 and r.mimetype == "text/plain"
    # X-Forwarded-For naming the proxy does not make a request the proxy's
    r = get(header, "/", "127.0.0.1", **{"X-Remote-User": "committee", "X-Forwarded-For": PROXY})
    assert r.status_code == 403


def test_an_unknown_user_is_refused(header):
    r = get(header, "/", PROXY, **{"X-Remote-User": "mallory"})
    assert r.status_code == 403 and "no access" in r.get_data(as_text=True)
    assert get(header, "/_dash-layout", PROXY, **{"X-Remote-User": "mallory"}).status_code == 403


def test_no_header_is_401(header):
    r = get(header, "/", PROXY)
    assert r.status_code == 401
    r = header.post(UPDATE, json={}, environ_overrides={"REMOTE_ADDR": PROXY})
    assert r.status_code == 401 and r.mimetype == "text/plain"
    assert get(header, "/", PROXY, **{"X-Remote-User": "  "}).status_code == 401


def test_the_user_header_can_be_named(header, monkeypatch):
    monkeypatch.setenv("DASHBOARD_USER_HEADER", "X-Auth-Name")
    assert get(header, "/", PROXY, **{"X-Auth-Name": "sponsor"}).status_code == 200
    assert get(header, "/", PROXY, **{"X-Remote-User": "sponsor"}).status_code == 401     # the default is not read


def test_a_removed_user_is_refused_on_the_next_request(header, tmp_path):
    assert get(header, "/", PROXY, **{"X-Remote-User": "sponsor"}).status_code == 200
    write_users(tmp_path / "users.json", {k: v for k, v in ACCOUNTS.items() if k != "sponsor"})
    assert get(header, "/", PROXY, **{"X-Remote-User": "sponsor"}).status_code == 403


def run_app(args, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "app.py", "--port", str(free_port()), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_start_up_without_a_trusted_proxy_exits_1_with_one_line(tmp_path):
    users = tmp_path / "users.json"
    write_users(users)
    out = run_app(["--auth", "header", "--users", str(users)])
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "--trusted-proxy" in out.stderr


def test_start_up_with_a_bad_proxy_address_or_users_file_exits_1_with_one_line(tmp_path):
    users = tmp_path / "users.json"
    write_users(users)
    out = run_app(["--auth", "header", "--users", str(users), "--trusted-proxy", "not-an-address"])
    assert out.returncode == 1 and "not-an-address" in out.stderr and out.stderr.strip().count("\n") == 0
    users.write_text(json.dumps({"users": {"x": {"role": "boss"}}}))
    out = run_app(["--auth", "header", "--users", str(users), "--trusted-proxy", PROXY])
    assert out.returncode == 1 and "boss" in out.stderr and out.stderr.strip().count("\n") == 0
    assert "Traceback" not in out.stderr
