"""Command line: python -m dashboard {validate,generate,import,export,warm,users} ...

  validate  check snapshots against the contract (exit 0 valid, 1 not)
  generate  write the synthetic registry's quarterly cuts (or, --format redcap, a REDCap export of it)
  import    build a snapshot from a REDCap project or CDISC ADaM datasets (exit 2: bad input, nothing published)
  export    print the rows behind a figure as JSON or CSV
  warm      compute every page's unfiltered view of a cut into the result cache
  users     add, list or remove the accounts of sign-in 'local' (and roles for 'header')
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboard.filters import FilterError, Filters
from dashboard.snapshots import SNAPSHOT_ID, SnapshotError, data_root, list_snapshots, read_manifest


def snapshot_arg(value: str) -> str:
    """--snapshot: a snapshot id or 'latest', never a path (it is joined to <data root>/snapshots)."""
    if value == "latest" or SNAPSHOT_ID.match(value):
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} must be a snapshot id (YYYY-MM-DD, optionally _suffix) or 'latest'")


def snapshot_id_arg(value: str) -> str:
    """--since: a snapshot id, never a path or 'latest'."""
    if SNAPSHOT_ID.match(value):
        return value
    raise argparse.ArgumentTypeError(f"{value!r} must be a snapshot id (YYYY-MM-DD, optionally _suffix)")


def cmd_validate(args) -> int:
    root = data_root(args.data)
    folder = root / "snapshots"
    if args.snapshot and args.snapshot != "latest":
        targets = [folder / args.snapshot]
        if not targets[0].is_dir():
            print(f"ERROR snapshot {args.snapshot!r} not found under {folder}", file=sys.stderr)
            return 1
    elif folder.is_dir():
        targets = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if args.snapshot == "latest":
            complete = list_snapshots(root, verify_checksums=False)
            targets = [complete[-1].path] if complete else []
    else:
        targets = []
    if not targets:
        print(f"ERROR no snapshot under {folder}", file=sys.stderr)
        return 1
    from dashboard.validate import validate_folder
    failed = checked = 0
    for path in targets:
        if read_manifest(path) is None and not args.snapshot:
            print(f"skipped {path.name}: no manifest.json (incomplete, not a snapshot)")
            continue
        report = validate_folder(path)
        print(report.summary())
        checked += 1
        failed += not report.ok
    if not checked:
        print(f"ERROR no snapshot with a manifest under {folder}", file=sys.stderr)
    return 1 if failed or not checked else 0


def cmd_generate(args) -> int:
    if args.format == "redcap":
        if not args.out:
            raise CommandError("--format redcap writes records.csv, dictionary.csv and sites.csv into --out DIR")
        from dashboard.importers.redcap.export import write_synthetic_export
        files = write_synthetic_export(Path(args.out), n_patients=args.patients, n_sites=args.sites,
                                       seed=args.seed, progress=not args.quiet)
        print(f"wrote {', '.join(p.name for p in files)} under {args.out}")
        return 0
    if args.out:
        raise CommandError("--out is for --format redcap; snapshots go under --data")
    from dashboard.generate import generate_registry
    paths = generate_registry(data_root(args.data), n_patients=args.patients, n_sites=args.sites,
                              seed=args.seed, last_cut_only=args.last_cut_only, progress=not args.quiet)
    print(f"wrote {len(paths)} snapshot(s) under {data_root(args.data) / 'snapshots'}: "
          f"{paths[0].name} .. {paths[-1].name}" if paths else "wrote nothing")
    return 0


EXPORT_OPTIONS = {
    "endpoint": dict(choices=["os", "ttp", "pfs", "local_ttp"], help="time-to-event endpoint"),
    "by": dict(help="grouping field, or none"),
    "ci": dict(choices=["log-log", "log", "plain"], help="KM confidence-interval transform"),
    "times": dict(help="comma-separated times in days (risk table)"),
    "ref": dict(metavar="LEVEL", help="cox, forest: the reference group, a level of --by (cox default: BCLC B for "
                                      "BCLC stage, else the largest; forest default: B)"),
    "scope": dict(choices=["overall", "local"], help="tumour response scope"),
    "level": dict(choices=["term", "soc"], help="adverse-event level"),
    "measure": dict(choices=["bclc", "milan", "resectable"], help="staging measure"),
    "within_days": dict(type=int, help="adverse events with onset within N days of a session"),
    "min_grade": dict(type=int, choices=[1, 2, 3, 4, 5], help="ae-listing: events of CTCAE grade N or more"),
    "patient_id": dict(metavar="ID", help="patient-record: the patient"),
    "part": dict(choices=["baseline", "sessions", "scans", "aes", "restaging"], help="patient-record: which table"),
    "compare": dict(metavar="LEVEL", help="forest: the group compared with --ref"),
    "subgroups": dict(metavar="F1,F2", help="forest: subgroup fields (default: every baseline grouping)"),
    "form": dict(choices=["hr", "single-arm"], help="forest: hazard ratios, or S(365) and median per subgroup"),
    "since": dict(type=snapshot_id_arg, metavar="SNAPSHOT_ID", help="changes: the previous data cut to compare with"),
}


EXIT_REFUSED = 3        # export --as-user: the user's role may not have this export (2: a usage error)


class CommandError(ValueError):
    """A command that cannot run as given (main prints the one line and exits 2)."""


def export_user(args):
    """The user the export runs as: --as-user looked up in the users file (--users, else the
    default one), or None (the operator, with the operating system's permissions). Raises
    CommandError for an unknown user or a missing users file."""
    from dashboard.auth import users as users_file
    if args.users and not args.as_user:
        raise CommandError("--users names the file --as-user looks the user up in; give --as-user NAME too")
    if not args.as_user:
        return None
    path = Path(args.users).expanduser() if args.users else users_file.default_path()
    if not path.is_file():
        raise CommandError(f"--as-user {args.as_user!r}: no users file at {path} (give --users FILE)")
    try:
        user = users_file.find(args.as_user, path)
    except users_file.UsersFileError as e:
        raise CommandError(str(e)) from None
    if user is None:
        raise CommandError(f"--as-user {args.as_user!r}: no such user in {path}")
    return user


def os_user() -> str:
    """The operating-system account running the command, for the audit line."""
    import getpass
    import os
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def cmd_export(args) -> int:
    from dashboard import access, audit
    user = export_user(args)
    before = access.current_user()
    access.set_process_user(user)
    try:
        with audit.console_on_stderr():         # standard output is the export itself
            return run_export_command(args, user)
    finally:
        access.set_process_user(before)


def run_export_command(args, user) -> int:
    """The export as `user` (None: every site), recorded in the audit log before it is printed."""
    from dashboard import access, audit, data, exports
    root = data_root(args.data)
    snapshot = data.resolve(args.snapshot, root)
    filters = Filters.from_cli(args.filter, known_sites=data.site_ids(snapshot))
    options = {k: getattr(args, k) for k in EXPORT_OPTIONS if getattr(args, k) is not None}
    if "scope" in options:       # --scope is the tumour-response scope; `scope` is the site access scope
        options["response_scope"] = options.pop("scope")
    for flag in ("related_only", "serious_only"):
        if getattr(args, flag):
            options[flag] = True
    facts = dict(export=args.name, snapshot=snapshot.snapshot_id, filters=filters.to_dict(), options=options,
                 os_user=os_user())
    try:
        exp = exports.run_export(args.name, snapshot, filters, access.scope_for(user, filters.site), **options)
    except access.AccessDenied as e:
        audit.record("export-refused", user, **facts)
        print(f"refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    text = exports.to_json(exp, snapshot, filters) if args.format == "json" else exports.to_csv(exp)
    try:
        audit.record_required("export", user, **facts, rows=len(exp.rows))
    except audit.AuditError as e:
        print(f"error: nothing exported: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_import(args) -> int:
    from dashboard.importers import EXIT_BAD_INPUT, ImportFailed
    if args.source == "redcap":
        from dashboard.importers.redcap.command import run
    else:
        from dashboard.importers.adam import run
    try:
        return run(args)
    except ImportFailed as e:
        print(f"import {args.source}: nothing published:\n{e.text()}", file=sys.stderr)
        return EXIT_BAD_INPUT


def cmd_warm(args) -> int:
    import os
    from dashboard.warm import warm
    if args.data:
        os.environ["REGISTRY_DATA"] = args.data     # read-only process configuration, read by data_root()
    timings = warm(args.snapshot, progress=not args.quiet)
    if not args.quiet:
        print(f"warmed {len(timings)} page(s) in {sum(timings.values()):.1f} s" if timings
              else "nothing to warm: the result cache is off (REGISTRY_CACHE=off)")
    return 0


def cmd_users(args) -> int:
    from dashboard.auth import users
    try:
        return users_action(args, users)
    except users.UsersFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def users_action(args, users) -> int:
    path = Path(args.users).expanduser() if args.users else users.default_path()
    if args.action == "list":
        accounts = users.read(path)
        for name in sorted(accounts):
            entry = accounts[name]
            sign_in = "password" if entry.get("password") else "no password"
            print(f"{name}\t{entry.get('role')}\t{','.join(entry.get('sites') or []) or '-'}\t{sign_in}")
        if not accounts:
            print(f"no user in {path}", file=sys.stderr)
        return 0
    if args.action == "remove":
        users.remove(path, args.name)
        print(f"removed {args.name} from {path}")
        return 0
    from dashboard.access import User
    User(args.name, args.role, tuple(args.site or ()))          # a bad name, role or site before the password prompt
    if args.name in users.read(path) and not args.replace:
        raise ValueError(f"user {args.name!r} already exists in {path} (--replace to set role, sites and password)")
    password = None if args.no_password else read_password(args.password_stdin)
    user = users.add(path, args.name, args.role, args.site or (), password, replace=args.replace)
    print(f"{'replaced' if args.replace else 'added'} {user.name} ({user.role}"
          f"{', sites ' + ','.join(user.sites) if user.sites else ''}) in {path}")
    return 0


def read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice without echo."""
    from dashboard.auth.users import check_password
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise ValueError("the two passwords differ")
    check_password(password)
    return password


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check snapshots against the contract")
    v.add_argument("--data", help="data root (default: $REGISTRY_DATA or ./data)")
    v.add_argument("--snapshot", type=snapshot_arg,
                   help="one snapshot id, or 'latest' (default: every snapshot folder)")
    v.set_defaults(func=cmd_validate)

    g = sub.add_parser("generate", help="write the synthetic registry")
    g.add_argument("--data", help="data root (default: $REGISTRY_DATA or ./data)")
    g.add_argument("--patients", type=int, default=600)
    g.add_argument("--sites", type=int, default=12)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--last-cut-only", action="store_true", help="write only the final data cut")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--format", choices=["snapshots", "redcap"], default="snapshots",
                   help="snapshots (default): the quarterly cuts under --data; redcap: the registry at its "
                        "last cut as a records export of the shipped REDCap project, into --out")
    g.add_argument("--out", metavar="DIR", help="folder for --format redcap")
    g.set_defaults(func=cmd_generate)

    imp = sub.add_parser("import", help="build a snapshot from a REDCap project or CDISC ADaM datasets")
    sources = imp.add_subparsers(dest="source", required=True)
    r = sources.add_parser("redcap", help="a REDCap records export (file or API) of the shipped project",
                           description="Reads a raw flat records export: a file (--records, --dictionary) or "
                                       "the REDCap API (--url, --token-file). See docs/redcap.md.")
    r.add_argument("--records", metavar="CSV", help="records export (CSV, raw or label headers and values)")
    r.add_argument("--dictionary", metavar="CSV", help="the project's data dictionary (CSV)")
    r.add_argument("--url", help="REDCap API URL, e.g. https://redcap.example.org/api/")
    r.add_argument("--token-file", metavar="FILE", help="file holding the API token (never on the command line)")
    r.add_argument("--sites", metavar="CSV", help="site list: site_id, site_name, activation_date, "
                                                  "target_enrollment (default: sites.csv beside --records)")
    kinds = {"redcap": r}
    a = sources.add_parser("adam", help="CDISC ADaM datasets (parquet, SAS .xpt or CSV)",
                           description="See docs/adam.md for what comes from where.")
    a.add_argument("--adsl", required=True, metavar="FILE", help="subject level (required)")
    for name, what in (("adtte", "time to event: OS, PFS, TTP"), ("adrs", "responses"),
                       ("adtr", "tumour measurements (sums of diameters)"), ("adae", "adverse events")):
        a.add_argument(f"--{name}", metavar="FILE", help=what)
    a.add_argument("--map", metavar="FILE", help="JSON: ADSL column names for what ADaM lacks (docs/adam.md)")
    a.add_argument("--sites", metavar="CSV", help="site list: site_id, site_name, activation_date, target_enrollment")
    kinds["adam"] = a
    for kind in kinds.values():
        kind.add_argument("--cutoff", required=True, metavar="YYYY-MM-DD", help="clinical cut-off date")
        kind.add_argument("--out", metavar="DATA_ROOT", help="data root to publish into (default: $REGISTRY_DATA or ./data)")
        kind.add_argument("--snapshot-id", help="snapshot id (default: the cut-off date; a _suffix may follow it)")
        kind.add_argument("--replace", action="store_true", help="replace a snapshot with the same id")
        kind.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import)

    from dashboard.exports import EXPORTS, _load_all
    _load_all()
    e = sub.add_parser("export", help="print the rows behind a figure",
                       description="exports: " + "; ".join(f"{k}: {s.help}" for k, s in sorted(EXPORTS.items())))
    e.add_argument("name", help="export name: " + ", ".join(sorted(EXPORTS)))
    e.add_argument("--data", help="data root (default: $REGISTRY_DATA or ./data)")
    e.add_argument("--snapshot", default="latest", type=snapshot_arg, help="snapshot id or 'latest'")
    e.add_argument("--filter", action="append", metavar="KEY=V[,V...]",
                   help="filter, repeatable: site, bclc, child_pugh, etiology, sex, ecog, age_min, "
                        "age_max, enrolled_from, enrolled_to")
    e.add_argument("--format", choices=["json", "csv"], default="json")
    for name, kw in EXPORT_OPTIONS.items():
        e.add_argument(f"--{name.replace('_', '-')}", dest=name, **kw)
    e.add_argument("--related-only", action="store_true", help="treatment-related AEs only")
    e.add_argument("--serious-only", action="store_true", help="serious AEs only")
    e.add_argument("--as-user", metavar="NAME",
                   help="run with that account's role and sites (exit 3 when its role may not have the export)")
    e.add_argument("--users", metavar="FILE", help="the users file --as-user looks NAME up in "
                                                   "(default: $DASHBOARD_USERS or ~/.config/hcc-registry/users.json)")
    e.set_defaults(func=cmd_export)

    w = sub.add_parser("warm", help="compute every page's unfiltered view of a cut into the result cache")
    w.add_argument("--data", help="data root (default: $REGISTRY_DATA or ./data)")
    w.add_argument("--snapshot", default="latest", help="snapshot id or 'latest'")
    w.add_argument("--quiet", action="store_true", help="no progress lines")
    w.set_defaults(func=cmd_warm)

    u = sub.add_parser("users", help="add, list or remove sign-in accounts (the users file)")
    users_help = "users file (default: $DASHBOARD_USERS or ~/.config/hcc-registry/users.json)"
    actions = u.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an account (password typed twice, or --password-stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, help="committee, investigator or sponsor")
    add.add_argument("--site", action="append", metavar="SITE", help="an investigator's own site, repeatable")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    add.add_argument("--no-password", action="store_true",
                     help="no password: the account signs in through the proxy (header) or OpenID Connect")
    add.add_argument("--replace", action="store_true", help="replace an existing account of that name")
    add.add_argument("--users", help=users_help)
    lst = actions.add_parser("list", help="name, role, sites (never password hashes)")
    lst.add_argument("--users", help=users_help)
    rm = actions.add_parser("remove", help="remove an account (its sessions end at once)")
    rm.add_argument("name")
    rm.add_argument("--users", help=users_help)
    u.set_defaults(func=cmd_users)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (FilterError, SnapshotError, KeyError, ValueError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
