"""Start the dashboard: python app.py [--port 8050] [--data DIR] [--host 127.0.0.1]

With no snapshot under the data root, the synthetic registry is generated there first.
The WSGI application is `app:server`.
"""
import argparse
import os
import sys

from dashboard.app import create_app
from dashboard.cache import CacheFolderError
from dashboard.snapshots import data_root, list_snapshots

try:
    app = create_app()
except CacheFolderError as e:          # a person's message, not a traceback (python app.py and gunicorn)
    sys.exit(f"error: {e}")
server = app.server


def ensure_data(root) -> None:
    """Generate the built-in synthetic registry when the data root holds no snapshot."""
    if not list_snapshots(root, verify_checksums=False):
        from dashboard.generate import generate_registry
        print(f"No snapshot under {root}: generating the synthetic registry there first.")
        generate_registry(root)


def main() -> None:
    parser = argparse.ArgumentParser(description="HCC DEB-TACE registry dashboard")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8050)))
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--data", help="data root (default: $REGISTRY_DATA or ./data)")
    args = parser.parse_args()
    if args.data:
        os.environ["REGISTRY_DATA"] = args.data  # read-only process configuration, read by data_root()
    ensure_data(data_root())
    from dashboard.warm import start_in_background
    start_in_background()       # the unfiltered pages of the latest cut, computed once into the cache
    from dashboard.security import QuietRequestHandler
    app.run(host=args.host, port=args.port, debug=False, request_handler=QuietRequestHandler)   # no versions in Server


if __name__ == "__main__":
    main()
