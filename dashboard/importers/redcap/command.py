"""`python -m dashboard import redcap`: a records export of the registry's project (file or API) ->
a validated snapshot, published only if it passes.

Files: `--records EXPORT.csv [--dictionary DICT.csv]` (default: dictionary.csv beside the
records). API: `--url URL --token-file FILE` (the dictionary from the API unless --dictionary
is given). Sites: `--sites CSV`, default sites.csv beside --records when it exists; without
one, the sites are those of the dictionary's site list that have patients, with no activation
date or target. Bad input raises ImportFailed (the caller prints it and exits 2).
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from tqdm import tqdm

from dashboard.importers import ImportFailed, Problem, parse_cutoff, publish_checked
from dashboard.snapshots import SNAPSHOT_ID, data_root


def _sources(args) -> tuple[Path | None, Path | None, Path | None]:
    """(records, dictionary, sites) paths from the arguments; exactly one source of records."""
    if bool(args.records) == bool(args.url):
        raise ImportFailed("give exactly one source: --records EXPORT.csv (a file) or --url URL --token-file FILE "
                           "(the REDCap API)")
    if args.url and not args.token_file:
        raise ImportFailed("--url needs --token-file FILE (a file holding the API token; never the token itself)")
    if args.token_file and not args.url:
        raise ImportFailed("--token-file is for the API: give --url too, or --records for a file")
    records = Path(args.records) if args.records else None
    if records is not None and not records.is_file():
        raise ImportFailed(Problem(f"--records {records}", "", "no such file"))
    dictionary = Path(args.dictionary) if args.dictionary else None
    if dictionary is None and records is not None:
        dictionary = records.parent / "dictionary.csv"
        if not dictionary.is_file():
            raise ImportFailed(f"--dictionary DICT.csv is needed: no dictionary.csv beside {records}")
    if dictionary is not None and not dictionary.is_file():
        raise ImportFailed(Problem(f"--dictionary {dictionary}", "", "no such file"))
    sites = Path(args.sites) if args.sites else None
    if sites is None and records is not None and (records.parent / "sites.csv").is_file():
        sites = records.parent / "sites.csv"
    if sites is not None and not sites.is_file():
        raise ImportFailed(Problem(f"--sites {sites}", "", "no such file"))
    return records, dictionary, sites


def run(args) -> int:
    """Read, build, validate and publish; print what was published. Returns the exit code (0)."""
    from dashboard.importers.redcap import records as reader
    from dashboard.importers.redcap.registry import build, check_project, read_sites

    cutoff = parse_cutoff(args.cutoff)
    records_path, dictionary_path, sites_path = _sources(args)
    root = Path(args.out) if args.out else data_root()
    snapshot_id = args.snapshot_id or cutoff.isoformat()
    if not SNAPSHOT_ID.match(snapshot_id) or not snapshot_id.startswith(cutoff.isoformat()):
        raise ImportFailed(f"snapshot id {snapshot_id!r} must be the cut-off date {cutoff}, optionally _suffix")
    if (root / "snapshots" / snapshot_id).exists() and not args.replace:
        raise ImportFailed(f"snapshot {snapshot_id} already exists under {root / 'snapshots'} "
                           "(--replace to replace it, or --snapshot-id with a _suffix)")
    quiet = args.quiet
    steps = tqdm(total=5, disable=quiet, desc="import redcap", unit="step", file=sys.stderr)
    try:
        if args.url:
            from dashboard.importers.redcap.api import fetch
            steps.set_postfix_str("REDCap API")
            records_text, dictionary_text = fetch(args.url, args.token_file, progress=not quiet)
            records_source = io.StringIO(records_text)
            del records_text
        else:
            records_source = records_path
            dictionary_text = None
        steps.update()
        steps.set_postfix_str("dictionary")
        dictionary = reader.read_dictionary(dictionary_path if dictionary_path else io.StringIO(dictionary_text))
        check_project(dictionary)                # before the records: a wrong project fails fast
        steps.update()
        steps.set_postfix_str("records")
        records = reader.read_records(records_source, dictionary, progress=not quiet)
        sites = read_sites(sites_path) if sites_path else None
        steps.update()
        steps.set_postfix_str("tables")
        built = build(records, cutoff, sites)
        del records
        steps.update()
        steps.set_postfix_str("validate and publish")
        try:
            path, warnings = publish_checked(root, cutoff, built.tables, source="redcap", snapshot_id=snapshot_id,
                                             replace=args.replace)
        except OSError as e:
            raise ImportFailed(Problem(f"data root {root}", "", f"the snapshot cannot be written there "
                                       f"({e.strerror or type(e).__name__}: {e.filename or root})")) from None
        steps.update()
    finally:
        steps.close()
    source = f"REDCap API {args.url}" if args.url else str(records_path)
    print(f"published snapshot {path.name} (cut-off {cutoff}) from {source} under {path.parent}")
    for note in built.notes:
        print(f"  {note}")
    if sites_path:
        print(f"  sites: from {sites_path}")
    for name, table in built.tables.items():
        print(f"  {name:<20} {table.num_rows:>9,} rows")
    if warnings:
        print(f"{len(warnings)} warning(s) (the snapshot is served; a data manager should look):")
        for w in warnings:
            print(f"  {w}")
    return 0
