"""The cache warmer: after `warm`, every page's unfiltered default view is answered from the
result cache, without a single DuckDB query (the browser's exact requests, replayed)."""
import os
import subprocess
import sys

import pytest

from dashboard import data
from dashboard.app import PAGES
from dashboard.replay import Session, update_values
from dashboard.warm import ROOT, warm


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTRY_CACHE", str(tmp_path / "cache"))


def test_after_warm_every_default_view_is_served_without_duckdb(mini_root, own_cache, monkeypatch, dash_app):
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    timings = warm("latest", app=dash_app)
    assert set(timings) == {label for _, label in PAGES}

    queries = []
    original = data._run             # every query of data.execute and data.value

    def counting(sql, *args, **kwargs):
        queries.append(sql)
        return original(sql, *args, **kwargs)
    monkeypatch.setattr(data, "_run", counting)
    session = Session(dash_app)
    snapshot_id = data.resolve("latest").snapshot_id
    for path, _ in PAGES:
        callbacks, sync, base = session.plan(path)
        sync_values, values = update_values(base, snapshot_id, {})
        session.replayer.post(sync, sync_values)
        for dep in callbacks:
            session.replayer.post(dep, values)       # raises on any non-200 answer
    assert queries == []

    # a filtered view was not warmed: it does reach DuckDB (the check above can fail)
    callbacks, sync, base = session.plan("/enrollment")
    _, values = update_values(base, snapshot_id, {"bclc": ["C"]})
    for dep in callbacks:
        session.replayer.post(dep, values)
    assert queries


def test_warm_command_line(mini_root, own_cache):
    out = subprocess.run([sys.executable, "-m", "dashboard", "warm", "--data", str(mini_root)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "[6/6] Downstaging" in out.stderr and "warmed 6 page(s)" in out.stdout


def test_warm_does_nothing_with_the_cache_off(mini_root, monkeypatch, dash_app):
    monkeypatch.setenv("REGISTRY_CACHE", "off")
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    assert warm("latest", app=dash_app) == {}
