"""Signing in as a role in tests: a users file and the trusted-proxy header sign-in (dashboard/auth),
with the Flask test client, whose requests come from 127.0.0.1.

    with signed_in(monkeypatch, tmp_path) as as_user:
        client = dash_app.server.test_client()
        r = client.post("/_dash-update-component", json=body, headers=as_user("sponsor"))
"""
from __future__ import annotations

import contextlib
import json

# one account per role; the investigator's own site is S01
ACCOUNTS = {
    "committee": {"role": "committee", "sites": []},
    "investigator": {"role": "investigator", "sites": ["S01"]},
    "sponsor": {"role": "sponsor", "sites": []},
}


def write_users(path, accounts=None) -> None:
    path.write_text(json.dumps({"users": accounts or ACCOUNTS}))


@contextlib.contextmanager
def signed_in(monkeypatch, tmp_path, accounts=None):
    """Header sign-in for the test client: yields as_user(name) -> the request headers of that user."""
    users = tmp_path / "users.json"
    write_users(users, accounts)
    monkeypatch.setenv("DASHBOARD_AUTH", "header")
    monkeypatch.setenv("DASHBOARD_TRUSTED_PROXIES", "127.0.0.1")
    monkeypatch.setenv("DASHBOARD_USERS", str(users))
    yield lambda name: {"X-Remote-User": name}
