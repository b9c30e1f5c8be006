"""Shared fixtures. Tests run real DuckDB over real parquet files written into tmp folders."""
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

from fixtures import mini_registry, write_snapshot  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Each test session (and the servers it starts) caches into its own folder; servers started
    by tests do not warm the cache in the background (tests/test_warm.py tests the warmer)."""
    import os
    os.environ["REGISTRY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["REGISTRY_WARM"] = "off"


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory):
    """A data root holding the hand-written mini registry (cut-off 2024-12-31)."""
    root = tmp_path_factory.mktemp("mini")
    write_snapshot(root, "2024-12-31", mini_registry())
    return root


@pytest.fixture(scope="session")
def mini_snapshot(mini_root):
    from dashboard import data
    return data.resolve("latest", mini_root)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """The built-in synthetic registry (default size), generated once per test session."""
    from dashboard.generate import generate_registry
    root = tmp_path_factory.mktemp("synthetic")
    generate_registry(root, progress=False)
    return root


@pytest.fixture(scope="session")
def dash_app():
    """The Dash app (pages registered), for tests that call the router or the HTTP endpoint."""
    from dashboard.app import create_app
    return create_app()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(synthetic_root):
    """The dashboard started as a user starts it (python app.py) on the synthetic registry."""
    port = free_port()
    log = open(synthetic_root / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data", str(synthetic_root)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("the dashboard exited: " + (synthetic_root / "server.log").read_text())
            time.sleep(0.25)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no browser download)."""
    pw = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium); .ci/run installs it")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page that records console errors; the test fails if any were logged."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    pg = context.new_page()
    pg.console_errors = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    yield pg
    context.close()
