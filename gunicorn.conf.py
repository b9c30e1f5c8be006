"""gunicorn settings: gunicorn -c gunicorn.conf.py app:server

Several worker processes share nothing in memory: each opens its own DuckDB connection lazily on
its first request (dashboard/data.py), and derived results are cached on disk in
$REGISTRY_CACHE (dashboard/cache.py), so every worker and every restart reuses them.
"""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8050')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))     # Dash fires a page's callbacks in parallel
worker_class = "gthread"
preload_app = True          # safe: the DuckDB connection is opened after the fork, on first use
timeout = 60
graceful_timeout = 20
accesslog = os.environ.get("GUNICORN_ACCESS_LOG")          # e.g. "-" for stdout


def when_ready(server):
    """Once the workers can serve: warm the result cache for the latest cut in a separate process
    (python -m dashboard warm; REGISTRY_WARM=off disables)."""
    from dashboard.warm import start_in_background
    start_in_background()
