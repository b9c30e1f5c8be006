"""The shipped REDCap project (dashboard/importers/redcap/project/dictionary.csv): a dictionary
REDCap accepts, that holds a source field for every contract column, with the registry's codes.

The dictionary is read here with the csv module, not with the importer's reader, so a mistake in
the reader cannot hide one in the project. Expected values come from REDCap's documentation of the
data dictionary (the 18 columns, field name rules, validation types, branching syntax) and from
dashboard/contract.py.
"""
import csv
import re
from pathlib import Path

import pytest

from dashboard.contract import CTCAE_SOC, TABLES
from dashboard.generate import SITE_NAMES
from dashboard.importers.redcap import registry
from dashboard.importers.redcap.registry import CHOICES, DICTIONARY, LESION_SLOTS, SOURCES

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "redcap"

# REDCap's data dictionary header, in order (REDCap "Data Dictionary" download).
HEADER = ["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
          "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
          "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
          "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
          "Matrix Ranking?", "Field Annotation"]
# REDCap's field validation types (Online Designer "Validation?" list, internal names).
VALIDATIONS = {"date_ymd", "date_mdy", "date_dmy", "datetime_ymd", "datetime_mdy", "datetime_dmy",
               "datetime_seconds_ymd", "datetime_seconds_mdy", "datetime_seconds_dmy", "email", "integer",
               "alpha_only", "number", "number_1dp", "number_2dp", "number_3dp", "number_4dp",
               "number_comma_decimal", "phone", "postalcode_canada", "ssn", "time", "time_mm_ss", "vmrn",
               "zipcode"}
FIELD_TYPES = {"text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse", "calc", "slider",
               "file", "descriptive", "sql"}


@pytest.fixture(scope="module")
def rows():
    with open(DICTIONARY, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [dict(zip(HEADER, r)) for r in reader]


@pytest.fixture(scope="module")
def fields(rows):
    return {r["Variable / Field Name"]: r for r in rows[1]}


def choices(text: str) -> dict[str, str]:
    out = {}
    for part in text.split("|"):
        code, sep, label = part.partition(",")
        assert sep, f"choice {part!r} has no comma"
        assert code.strip() not in out, f"code {code.strip()} twice"
        out[code.strip()] = label.strip()
    return out


def test_header_is_redcaps_18_columns(rows):
    header, body = rows
    assert header == HEADER
    assert all(len(r) == 18 for r in body)
    fixture = TESTDATA / "repeating-instruments" / "dictionary.csv"
    if fixture.is_file():        # a dictionary REDCap itself wrote (REDCapR's test project)
        with open(fixture, encoding="utf-8-sig", newline="") as fh:
            assert next(csv.reader(fh)) == header


def test_field_names_are_legal_and_unique(rows):
    names = [r["Variable / Field Name"] for r in rows[1]]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name) and len(name) <= 26 and "__" not in name, name
        assert not name.endswith("_complete"), name
    forms = [r["Form Name"] for r in rows[1]]
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", f) for f in forms)
    assert names[0] == "patient_id" and forms[0] == registry.BASELINE
    labels = [r["Field Label"] for r in rows[1]]
    assert len(labels) == len(set(labels)), "a labels export's header would be ambiguous"
    # REDCap wants each form's fields contiguous
    seen = []
    for f in forms:
        if not seen or seen[-1] != f:
            assert f not in seen, f"form {f} is split"
            seen.append(f)
    assert tuple(seen) == registry.FORMS


def test_types_validations_and_ranges(fields):
    for name, f in fields.items():
        assert f["Field Type"] in FIELD_TYPES, name
        v = f["Text Validation Type OR Show Slider Number"]
        assert not v or v in VALIDATIONS, (name, v)
        assert not v or f["Field Type"] == "text", name
        assert f["Required Field?"] in ("", "y"), name
        if f["Field Type"] in ("dropdown", "radio", "checkbox"):
            assert choices(f["Choices, Calculations, OR Slider Labels"]), name
            for code in choices(f["Choices, Calculations, OR Slider Labels"]):
                assert re.fullmatch(r"[A-Za-z0-9_]+", code), (name, code)
    dates = [n for n, f in fields.items() if n.endswith("_date") or n in ("ae_onset", "ae_resolution")]
    assert dates and all(fields[n]["Text Validation Type OR Show Slider Number"] == "date_ymd" for n in dates)
    ranges = {"age": ("integer", "18", "100"), "ecog": ("integer", "0", "4"), "cp_score": ("integer", "5", "15"),
              "dose_mg": ("number", "0.1", "300"), "session_number": ("integer", "1", "")}
    ranges.update({f"img_l{k}_viable_mm": ("number", "0", "300") for k in range(1, LESION_SLOTS + 1)})
    for name, expect in ranges.items():
        f = fields[name]
        assert (f["Text Validation Type OR Show Slider Number"], f["Text Validation Min"],
                f["Text Validation Max"]) == expect, name
    assert choices(fields["ae_grade"]["Choices, Calculations, OR Slider Labels"]).keys() == {"1", "2", "3", "4", "5"}
    for name in ("patient_id", "site", "first_tx_date", "age", "sex", "session_date", "img_date", "ae_onset",
                 "ae_term", "ae_grade", "last_alive_date"):
        assert fields[name]["Required Field?"] == "y", name


def test_branching_logic_and_calculations_reference_existing_fields(fields):
    refs = 0
    for name, f in fields.items():
        for text in (f["Branching Logic (Show field only if...)"], f["Field Annotation"], f["Field Label"]):
            for ref in re.findall(r"\[([a-z][a-z0-9_]*)(?:\(\w+\))?\]", text):
                assert ref in fields, f"{name} refers to [{ref}]"
                refs += 1
        if f["Branching Logic (Show field only if...)"]:
            assert f["Branching Logic (Show field only if...)"].count("(") == f["Branching Logic (Show field only if...)"].count(")")
    assert refs > 50
    show = {n: f["Branching Logic (Show field only if...)"] for n, f in fields.items()}
    assert show["death_date"] == "[dead] = '1'"
    assert show["off_study_reason"] == "[off_study_date] <> ''"
    for k in range(1, LESION_SLOTS + 1):
        assert show[f"img_l{k}_viable_mm"] == f"[les{k}_target] = '1'"
        assert show[f"img_l{k}_nt_status"] == f"[les{k}_target] = '0'"


def test_every_contract_column_has_its_source_field(fields):
    assert set(SOURCES) == set(TABLES)
    for table, columns in SOURCES.items():
        assert list(columns) == TABLES[table].column_names, table
        for column, source in columns.items():
            if source == "sites.csv":
                continue
            for k in range(1, LESION_SLOTS + 1):
                assert source.format(k=k) in fields, (table, column, source)


def test_coded_fields_use_the_registrys_codes(fields):
    for name, codes in CHOICES.items():
        assert choices(fields[name]["Choices, Calculations, OR Slider Labels"]).keys() == codes.keys(), name
    terms = choices(fields["ae_term"]["Choices, Calculations, OR Slider Labels"])
    assert set(terms.values()) == set(CTCAE_SOC)          # the contract's CTCAE v4.0 list, as labels
    assert {v: terms[k] for k, v in CHOICES["ae_term"].items()} == {t: t for t in CTCAE_SOC}
    sites = choices(fields["site"]["Choices, Calculations, OR Slider Labels"])
    assert list(sites.values()) == list(SITE_NAMES) and list(sites)[:2] == ["S01", "S02"]


def test_soc_calctext_gives_each_terms_system_organ_class(fields):
    """Evaluate the @CALCTEXT's nested if() for every term code: the SOC REDCap shows a user is the
    contract's CTCAE_SOC of the term."""
    calc = fields["ae_soc"]["Field Annotation"]
    assert calc.startswith("@CALCTEXT(")
    branches = re.findall(r"if\(((?:\[ae_term\] = '\d+'(?: or )?)+), '([^']+)'", calc)
    by_code = {code: soc for cond, soc in branches for code in re.findall(r"'(\d+)'", cond)}
    terms = choices(fields["ae_term"]["Choices, Calculations, OR Slider Labels"])
    assert by_code == {code: CTCAE_SOC[term] for code, term in terms.items()}
    cp = fields["cp_class"]["Field Annotation"]
    assert "[cp_score] <= 6, 'A'" in cp and "[cp_score] <= 9, 'B', 'C'" in cp


def test_reader_accepts_the_project():
    from dashboard.importers.redcap.records import read_dictionary
    d = read_dictionary(DICTIONARY)
    assert d.record_id == "patient_id"
    assert list(d.forms) == list(registry.FORMS)
    registry.check_project(d)


def test_docs_map_every_contract_column_to_its_field():
    """docs/redcap.md's mapping table has every contract column with the field SOURCES reads it from."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "redcap.md").read_text(encoding="utf-8")
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in doc.splitlines()
            if line.startswith("| ") and line.count("|") == 4]
    for table, columns in SOURCES.items():
        for column, source in columns.items():
            hits = [r for r in rows if r[0] == table and column in [c.strip() for c in r[1].split(",")]]
            assert hits, f"docs/redcap.md: no row for {table}.{column}"
            want = "sites.csv" if source == "sites.csv" else ("record ID" if source == "patient_id" and
                                                              table != "patients" else f"`{source}`")
            assert want in hits[0][2], (table, column, hits[0][2])
