"""Start the dashboard: python app.py [--port 8050] [--data DIR] [--host 127.0.0.1]
    [--auth local|oidc|header|none] [--users FILE] [--trusted-proxy ADDR]... [--user-header NAME]

With no snapshot under the data root, the synthetic registry is generated there first.
The WSGI application is `app:server` (gunicorn reads the sign-in settings from the DASHBOARD_*
environment variables these flags set; docs/sign-in.md).
"""
import argparse
import os
import sys

from dashboard import auth
from dashboard.app import create_app
from dashboard.cache import CacheFolderError
from dashboard.snapshots import data_root, list_snapshots


def check_sign_in() -> None:
    """Exit with one line when the sign-in settings cannot work (no traceback)."""
    try:
        auth.check_config()
    except auth.AuthConfigError as e:
        sys.exit(f"error: {e}")


if __name__ != "__main__":      # gunicorn (app:server): the environment is the whole configuration
    check_sign_in()
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
    parser.add_argument("--auth", choices=auth.MODES, help="sign-in: local, oidc, header or none "
                        "(default: $DASHBOARD_AUTH or none, the demo on synthetic data)")
    parser.add_argument("--users", help="users file (default: $DASHBOARD_USERS or ~/.config/hcc-registry/users.json)")
    parser.add_argument("--trusted-proxy", action="append", metavar="ADDR",
                        help="address or network of the sign-in proxy (--auth header), repeatable")
    parser.add_argument("--user-header", help=f"the proxy's user header (default {auth.DEFAULT_USER_HEADER})")
    args = parser.parse_args()
    if args.data:
        os.environ["REGISTRY_DATA"] = args.data  # read-only process configuration, read by data_root()
    settings = {"DASHBOARD_AUTH": args.auth, "DASHBOARD_USERS": args.users, "DASHBOARD_USER_HEADER": args.user_header,
                "DASHBOARD_TRUSTED_PROXIES": ",".join(args.trusted_proxy) if args.trusted_proxy else None}
    os.environ.update({k: v for k, v in settings.items() if v is not None})     # read on each request
    check_sign_in()
    ensure_data(data_root())
    from dashboard.warm import start_in_background
    start_in_background()       # the unfiltered pages of the latest cut, computed once into the cache
    from dashboard.security import QuietRequestHandler
    app.run(host=args.host, port=args.port, debug=False, request_handler=QuietRequestHandler)   # no versions in Server


if __name__ == "__main__":
    main()
