"""Signed-cookie sessions: the signed-in user in Flask's session cookie (itsdangerous-signed with
the server's secret key), with an idle timeout.

Interface used by every sign-in mode that has a sign-in step (local, oidc):
  start(user)   after a successful sign-in
  current()     the User of this request's cookie, or None (absent, forged, expired, idle too long)
  end()         sign-out
"""
from __future__ import annotations

import os
import time

import flask

from dashboard.access import User

IDLE_SECONDS = int(os.environ.get("DASHBOARD_IDLE_MINUTES", "30")) * 60


def start(user: User) -> None:
    flask.session.clear()
    flask.session["user"] = {"name": user.name, "role": user.role, "sites": list(user.sites)}
    flask.session["seen"] = int(time.time())


def current() -> User | None:
    entry = flask.session.get("user")
    seen = flask.session.get("seen")
    if not isinstance(entry, dict) or not isinstance(seen, int):
        return None
    if time.time() - seen > IDLE_SECONDS:
        flask.session.clear()
        return None
    try:
        user = User(entry.get("name"), entry.get("role"), tuple(entry.get("sites") or ()))
    except (TypeError, ValueError):
        return None
    flask.session["seen"] = int(time.time())
    return user


def end() -> None:
    flask.session.clear()
