"""Round trip: the synthetic registry -> a REDCap records export of the shipped project
(`generate --format redcap`) -> `import redcap` gives, at the last cut-off, the snapshot
`generate` publishes for the same seed, and at an earlier cut-off the snapshot of that cut: every
table, the same rows and values. The independent source of the expected snapshots is the
generator's own publication (dashboard/generate.py, `cut_tables`), which shares no code with the
export writer or the importer.
"""
import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dashboard.__main__ import main
from dashboard.contract import TABLES
from dashboard.generate import cut_dates, generate_registry
from dashboard.snapshots import read_manifest

PATIENTS, SEED, SITES = 300, 7, 12
LAST = cut_dates()[-1]
EARLY = cut_dates()[3]          # 2023-12-31: accrual still running, many deaths and AEs after it
FIRST = cut_dates()[0]          # 2023-03-31: most sites not yet activated


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate_registry(root, n_patients=PATIENTS, n_sites=SITES, seed=SEED, progress=False)
    return root


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    assert main(["generate", "--format", "redcap", "--out", str(out), "--patients", str(PATIENTS),
                 "--seed", str(SEED), "--sites", str(SITES), "--quiet"]) == 0
    return out


def imported(tmp_path, export, cutoff: dt.date, *extra) -> Path:
    root = tmp_path / "data"
    assert main(["import", "redcap", "--records", str(export / "records.csv"), "--dictionary",
                 str(export / "dictionary.csv"), "--cutoff", cutoff.isoformat(), "--out", str(root), "--quiet",
                 *extra]) == 0
    return root / "snapshots" / cutoff.isoformat()


def assert_same_tables(got, want, skip=()):
    for name, table in TABLES.items():
        key = [(k, "ascending") for k in table.key]
        a = pq.read_table(got / f"{name}.parquet").sort_by(key)
        b = pq.read_table(want / f"{name}.parquet").sort_by(key)
        assert a.schema.equals(b.schema), name
        assert a.num_rows == b.num_rows, name
        for column in a.column_names:
            if (name, column) in skip:
                continue
            assert a[column].equals(b[column]), f"{name}.{column}"


@pytest.mark.parametrize("cutoff", [LAST, EARLY, FIRST], ids=["last-cut", "earlier-cut", "first-cut"])
def test_import_equals_the_synthetic_snapshot(tmp_path, synthetic, export, cutoff):
    got = imported(tmp_path, export, cutoff)
    want = synthetic / "snapshots" / cutoff.isoformat()
    assert_same_tables(got, want)
    manifest = read_manifest(got)
    assert manifest["source"] == "redcap" and manifest["cutoff_date"] == cutoff.isoformat()
    assert {k: v["rows"] for k, v in manifest["tables"].items()} == \
        {k: v["rows"] for k, v in read_manifest(want)["tables"].items()}


def test_the_earlier_cut_really_cuts(synthetic):
    """The two cuts differ (so the earlier-cut equality above proves the data cut did work)."""
    early = read_manifest(synthetic / "snapshots" / EARLY.isoformat())["tables"]
    last = read_manifest(synthetic / "snapshots" / LAST.isoformat())["tables"]
    assert all(early[t]["rows"] < last[t]["rows"] for t in ("patients", "treatments", "imaging", "adverse_events"))
    first = read_manifest(synthetic / "snapshots" / FIRST.isoformat())["tables"]
    assert first["sites"]["rows"] < last["sites"]["rows"]                  # sites activated after it
    last_patients = pq.read_table(synthetic / "snapshots" / LAST.isoformat() / "patients.parquet").to_pylist()
    enrolled = [p for p in last_patients if p["first_treatment_date"] <= EARLY]
    assert any(p["death_date"] and p["death_date"] > EARLY for p in enrolled)       # deaths to clear
    assert any(p["off_study_date"] and p["off_study_date"] > EARLY for p in enrolled)


def test_without_a_sites_file_sites_come_from_the_dictionary(tmp_path, synthetic, export):
    """No sites.csv: site ids and names from the dictionary's site list (sites with patients only),
    activation date and target blank; every other table as before."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("records.csv", "dictionary.csv"):
        (bare / name).write_bytes((export / name).read_bytes())
    got = imported(tmp_path, bare, LAST)
    want = synthetic / "snapshots" / LAST.isoformat()
    sites = pq.read_table(got / "sites.parquet")
    with_patients = set(pq.read_table(want / "patients.parquet")["site_id"].to_pylist())
    expected = pq.read_table(want / "sites.parquet").to_pylist()
    assert sorted(sites["site_id"].to_pylist()) == sorted(with_patients)
    names = {r["site_id"]: r["site_name"] for r in expected}
    assert {r["site_id"]: r["site_name"] for r in sites.to_pylist()} == {s: names[s] for s in with_patients}
    assert sites["activation_date"].null_count == sites["target_enrollment"].null_count == len(sites)
    for name in TABLES:
        if name != "sites":
            key = [(k, "ascending") for k in TABLES[name].key]
            assert pq.read_table(got / f"{name}.parquet").sort_by(key).equals(
                pq.read_table(want / f"{name}.parquet").sort_by(key)), name


def labels_export(export, dest):
    """REDCap's "labels" variant of the raw export, made here with the csv module from the
    dictionary (field labels as headers, choice labels and Yes/No as values, instruments by the
    label REDCap gives a form uploaded by name: words capitalised), not by the importer's code."""
    import csv
    with open(export / "dictionary.csv", encoding="utf-8", newline="") as fh:
        fields = {r["Variable / Field Name"]: r for r in csv.DictReader(fh)}
    with open(export / "records.csv", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames, list(reader)
    special = {"redcap_repeat_instrument": "Repeat Instrument", "redcap_repeat_instance": "Repeat Instance"}

    def label(column):
        if column in special:
            return special[column]
        return "Complete?" if column.endswith("_complete") else fields[column]["Field Label"]

    def value(column, v):
        if v == "" or column == "redcap_repeat_instance":
            return v
        if column == "redcap_repeat_instrument":
            return v.replace("_", " ").title()
        if column.endswith("_complete"):
            return {"0": "Incomplete", "1": "Unverified", "2": "Complete"}[v]
        f = fields[column]
        if f["Field Type"] == "yesno":
            return {"1": "Yes", "0": "No"}[v]
        if f["Field Type"] in ("dropdown", "radio"):
            codes = dict(p.split(",", 1) for p in f["Choices, Calculations, OR Slider Labels"].split(" | "))
            return codes[v].strip()
        return v
    dest.mkdir()
    with open(dest / "records.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([label(c) for c in header])
        writer.writerows([value(c, r[c]) for c in header] for r in rows)
    for name in ("dictionary.csv", "sites.csv"):
        (dest / name).write_bytes((export / name).read_bytes())
    return dest


def test_labels_export_gives_the_same_snapshot(tmp_path, synthetic, export):
    """Label headers (REDCap's repeated 'Complete?' included) and label values."""
    folder = labels_export(export, tmp_path / "labels")
    text = (folder / "records.csv").read_text(encoding="utf-8")
    assert text.startswith("Patient ID,Repeat Instrument,Repeat Instance,Site,") and ",Deb Tace Session," in text
    assert text.splitlines()[0].count(",Complete?") == 7
    got = imported(tmp_path, folder, LAST)
    assert_same_tables(got, synthetic / "snapshots" / LAST.isoformat())


@pytest.mark.parametrize("empty", [(), ("adverse_events", "staging", "lesion_measurements", "lesions")],
                         ids=["as-written", "no-aes-reviews-or-lesions"])
def test_hand_written_registry_round_trips(tmp_path, empty):
    """The hand-written mini registry of tests/fixtures.py (not the generator's data: other ids,
    null segments, codes at their edges), with some tables empty, exported and imported."""
    from fixtures import mini_registry, write_snapshot
    from dashboard.importers.redcap.export import write_export
    rows = {name: ([] if name in empty else table_rows) for name, table_rows in mini_registry().items()}
    want = write_snapshot(tmp_path / "want", "2024-12-31", rows)
    tables = {name: pq.read_table(want / f"{name}.parquet") for name in TABLES}
    write_export(tables, tmp_path / "export")
    got = imported(tmp_path, tmp_path / "export", dt.date(2024, 12, 31))
    assert_same_tables(got, want)


def test_generate_redcap_into_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["generate", "--format", "redcap", "--out", str(blocker / "x"), "--patients", "5", "--quiet"]) == 2
    assert f"cannot write the export into {blocker / 'x'}" in capsys.readouterr().err
