"""Shared fixtures. Tests run real DuckDB over real parquet files written into tmp folders."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
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


@contextlib.contextmanager
def running_app(root, log_path, *args, env=None):
    """`python app.py --data root *args` started as a user starts it, on a free port, with `env`
    replacing the environment when given; yields its URL once it answers (any HTTP status: with
    sign-in on, a page answers 302 or 401) and stops it, and every process it started, on exit."""
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data", str(root), *args],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/assets/registry.css", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("the dashboard exited: " + Path(log_path).read_text())
                time.sleep(0.25)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


@pytest.fixture(scope="session")
def live_server(synthetic_root):
    """The dashboard started as a user starts it (python app.py) on the synthetic registry."""
    with running_app(synthetic_root, synthetic_root / "server.log") as url:
        yield url


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
