"""Sign-in: who the user of a request is (dashboard/access.User on flask.g.user).

Chosen at start by DASHBOARD_AUTH (python app.py --auth sets it): local | oidc | header | none.
'none' is the README's demo: every request is the demo user (committee level, synthetic data
cuts only, "demo: no sign-in" on every page).
"""
from __future__ import annotations

import os

import flask

from dashboard.access import DEMO_USER

MODES = ("local", "oidc", "header", "none")


def mode() -> str:
    value = os.environ.get("DASHBOARD_AUTH", "none").strip().lower() or "none"
    if value not in MODES:
        raise ValueError(f"DASHBOARD_AUTH={value!r}: one of {', '.join(MODES)}")
    return value


def install(app) -> None:
    """Put the request's user on flask.g before anything else runs."""
    server = app.server

    @server.before_request
    def _user():
        flask.g.user = DEMO_USER if mode() == "none" else None
        return None
