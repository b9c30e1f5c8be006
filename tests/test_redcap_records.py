"""The REDCap reader on REDCapR's real test projects (../shared/testdata/redcap): the data dictionary,
repeating instruments, longitudinal events, checkboxes, form status, blanks, the labels export, and
every kind of bad export. Expected values are read from the fixture CSV text with the csv module
(the cell is named in each test), never from the reader itself."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest

from dashboard.importers import ImportFailed
from dashboard.importers.redcap.records import read_dictionary, read_events, read_records

REDCAP = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "redcap"
pytestmark = pytest.mark.skipif(not REDCAP.is_dir(), reason=f"public REDCap fixtures not found at {REDCAP}")

LONG, REPEAT, VIGNETTE = "longitudinal", "repeating-instruments", "vignette-repeating"


def rows_of(project: str, name: str = "data.csv") -> tuple[list[str], list[dict[str, str]]]:
    with open(REDCAP / project / name, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def write(path: Path, header: list[str], rows: list[dict[str, str]] | list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(h, "") for h in header] if isinstance(row, dict) else row)
    return path


def dictionary(project: str):
    return read_dictionary(REDCAP / project / "dictionary.csv")


def problems(excinfo) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


def one(found: list[str], *parts: str) -> str:
    """The one problem line holding every part (fails listing all problems otherwise)."""
    hits = [p for p in found if all(part in p for part in parts)]
    assert len(hits) == 1, f"expected one problem with {parts}, got {hits} among {found}"
    return hits[0]


def form_blocks(header: list[str]) -> dict[str, list[str]]:
    """A raw export header cut into forms: each form's columns end with its <form>_complete."""
    blocks, current = {}, []
    for h in header:
        if h.startswith("redcap_") or h == header[0]:
            continue
        current.append(h)
        if h.endswith("_complete"):
            blocks[h[: -len("_complete")]] = current
            current = []
    return blocks


# --- data dictionary ---------------------------------------------------------------------------

def test_dictionary_fields_types_choices_and_validations_of_the_longitudinal_project():
    d = dictionary(LONG)
    # dictionary.csv line 2: study_id is the first field, of form demographics.
    assert d.record_id == "study_id"
    assert list(d.fields)[0] == "study_id"
    _, rows = rows_of(LONG, "dictionary.csv")
    assert list(d.fields) == [r["Variable / Field Name"] for r in rows]
    assert list(d.forms) == list(dict.fromkeys(r["Form Name"] for r in rows))
    # ethnicity: radio, "0, Hispanic or Latino | 1, NOT Hispanic or Latino | 2, Unknown / Not Reported".
    eth = d.fields["ethnicity"]
    assert (eth.type, eth.form) == ("radio", "demographics")
    assert eth.choices == {"0": "Hispanic or Latino", "1": "NOT Hispanic or Latino", "2": "Unknown / Not Reported"}
    # height: text, number, min 130, max 215; weight: integer 35..200.
    assert (d.fields["height"].validation, d.fields["height"].min, d.fields["height"].max) == ("number", "130", "215")
    assert (d.fields["weight"].validation, d.fields["weight"].min, d.fields["weight"].max) == ("integer", "35", "200")
    # dob: date_ymd, identifier y; first_name identifier y; email validation email.
    assert d.fields["dob"].validation == "date_ymd" and d.fields["dob"].identifier
    assert d.fields["first_name"].identifier and not d.fields["age"].identifier
    # given_birth is yesno: REDCap's fixed choices 1 Yes, 0 No.
    assert d.fields["given_birth"].type == "yesno"
    assert d.fields["given_birth"].choices == {"1": "Yes", "0": "No"}
    # num_children branching logic, as written in the file.
    assert d.fields["num_children"].branching == '[sex] = "0" and [given_birth] = "1"'
    # bmi is calc: the formula is not choices.
    assert d.fields["bmi"].type == "calc" and d.fields["bmi"].choices == {}
    assert d.fields["bmi"].calculation == "round(([weight]*10000)/(([height])^(2)),1)"
    # meds: checkbox "1, Lexapro | 2, Celexa | 3, Prozac | 4, Paxil | 5, Zoloft".
    assert list(d.fields["meds"].choices) == ["1", "2", "3", "4", "5"]
    assert d.fields["meds"].choices["5"] == "Zoloft"


def test_export_columns_are_the_raw_export_header_form_by_form():
    """data.csv's header (REDCap wrote it) is the record id, the event, then each form's
    export_columns without the record id."""
    d = dictionary(LONG)
    header, _ = rows_of(LONG)
    blocks = form_blocks(header)
    assert list(blocks) == list(d.forms)
    for form, columns in blocks.items():
        assert [c for c in d.export_columns(form) if c != d.record_id] == columns, form
    assert d.export_columns("demographics")[0] == "study_id"


def test_dictionary_from_the_api_metadata_export_is_the_same():
    """The API's content=metadata answer names the same 18 columns field_name, form_name, ..."""
    api_names = ["field_name", "form_name", "section_header", "field_type", "field_label",
                 "select_choices_or_calculations", "field_note", "text_validation_type_or_show_slider_number",
                 "text_validation_min", "text_validation_max", "identifier", "branching_logic",
                 "required_field", "custom_alignment", "question_number", "matrix_group_name",
                 "matrix_ranking", "field_annotation"]
    text = (REDCAP / LONG / "dictionary.csv").read_text(encoding="utf-8-sig")
    body = text.split("\n", 1)[1]
    assert read_dictionary(io.StringIO(",".join(api_names) + "\n" + body)) == dictionary(LONG)


@pytest.mark.parametrize("edit, field, message", [
    (lambda rows: rows[1].__setitem__(3, "radiobutton"), "ethnicity", "field type 'radiobutton' is not one of"),
    (lambda rows: rows[1].__setitem__(0, "sex"), "sex", "is defined twice"),
    (lambda rows: rows[1].__setitem__(5, "0, Hispanic | , Other"), "ethnicity", "has no code before its comma"),
    (lambda rows: rows[1].__setitem__(5, "0, Hispanic | 0, Other"), "ethnicity", "choice code '0' appears twice"),
    (lambda rows: rows[1].__setitem__(0, "Ethnicity Group"), "Ethnicity Group", "is not lower-case letters"),
    (lambda rows: rows[3].__setitem__(8, "soon"), "bp_systolic", "validation bound 'soon' is not a valid integer"),
    (lambda rows: rows[1].__setitem__(1, "bp"), "sex", "form demographics is split: its fields must be together"),
])
def test_a_bad_dictionary_names_the_field_and_line(tmp_path, edit, field, message):
    header, *rows = list(csv.reader(open(REDCAP / REPEAT / "dictionary.csv", encoding="utf-8-sig")))
    # A four-field dictionary: record_id, ethnicity, sex, bp_systolic (rows 0..3 of `chosen`).
    by_name = {r[0]: r for r in rows}
    chosen = [by_name["record_id"], by_name["ethnicity"], by_name["sex"], by_name["bp_systolic"]]
    edit(chosen)
    path = write(tmp_path / "dictionary.csv", header, chosen)
    with pytest.raises(ImportFailed) as e:
        read_dictionary(path)
    assert len(problems(e)) == 1
    line = one(problems(e), f"field {field}", message)
    assert f"data dictionary {path} line " in line


def test_a_records_file_given_as_the_dictionary_is_not_a_dictionary():
    with pytest.raises(ImportFailed) as e:
        read_dictionary(REDCAP / REPEAT / "data.csv")
    assert "is not a REDCap data dictionary: no column 'Variable / Field Name'" in str(e.value)


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"\n\n", "is empty"),
                                              (b"\xff\xfe\x00a\x00b", "cannot be read")])
def test_an_empty_or_unreadable_dictionary(tmp_path, content, message):
    path = tmp_path / "dictionary.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFailed) as e:
        read_dictionary(path)
    assert message in str(e.value)


# --- records: repeating instruments --------------------------------------------------------------

def test_repeating_instrument_rows_instances_and_types():
    records = read_records(REDCAP / REPEAT / "data.csv", dictionary(REPEAT))
    _, rows = rows_of(REPEAT)
    assert records.longitudinal is False
    assert records.record_ids() == ["1", "2"]
    bp = records.form("bp")
    expected = [r for r in rows if r["redcap_repeat_instrument"] == "bp"]
    assert list(bp.columns) == ["record_id", "redcap_repeat_instance", "date_bp", "bp_systolic",
                                "bp_diastolic", "bp_complete"]
    assert bp["record_id"].tolist() == [r["record_id"] for r in expected]
    assert bp["redcap_repeat_instance"].tolist() == [int(r["redcap_repeat_instance"]) for r in expected]
    assert bp["bp_systolic"].tolist() == [int(r["bp_systolic"]) for r in expected]
    assert bp["bp_complete"].tolist() == [int(r["bp_complete"]) for r in expected]
    # data.csv row 5 (record 2, bp instance 1): date_bp 2004-04-04, bp_systolic 114.
    last = bp.iloc[-1]
    assert (last["record_id"], last["redcap_repeat_instance"], last["bp_systolic"]) == ("2", 1, 114)
    assert last["date_bp"] == pd.Timestamp("2004-04-04")
    assert str(bp["bp_systolic"].dtype) == "Int64" and str(bp["redcap_repeat_instance"].dtype) == "Int64"
    assert str(bp["date_bp"].dtype) == "datetime64[ns]" and str(bp["bp_complete"].dtype) == "Int64"


def test_non_repeating_form_rows_codes_and_text():
    records = read_records(REDCAP / REPEAT / "data.csv", dictionary(REPEAT))
    demo = records.form("demographics")
    # data.csv row 1: 1,,,2019-10-14,aaa,2010-10-14,8.9,1,4,0,2
    assert list(demo.columns) == ["record_id", "date_enrolled", "first_name", "dob", "age", "ethnicity",
                                  "race", "sex", "demographics_complete"]
    first = demo.iloc[0]
    assert first["date_enrolled"] == pd.Timestamp("2019-10-14") and first["first_name"] == "aaa"
    assert first["age"] == "8.9"            # age has no validation: text as written
    assert (first["ethnicity"], first["race"], first["sex"]) == ("1", "4", "0")     # raw codes
    assert str(demo["sex"].dtype) == "string" and str(demo["age"].dtype) == "string"
    assert len(demo) == 2                   # the bp rows hold no demographics value


def test_vignette_forms_numbers_files_and_status():
    records = read_records(REDCAP / VIGNETTE / "data.csv", dictionary(VIGNETTE))
    _, rows = rows_of(VIGNETTE)
    for form in ("blood_pressure", "laboratory", "image"):
        assert len(records.form(form)) == sum(r["redcap_repeat_instrument"] == form for r in rows), form
    intake = records.form("intake")
    # data.csv row 1: height 1.0, weight 11.0, bmi 111.0 (number_1dp -> Float64).
    assert intake["height"].tolist() == [1.0, 2.0] and str(intake["height"].dtype) == "Float64"
    image = records.form("image")
    # image_complete in data.csv rows 7, 8, 15, 16, 17: 2, 0, 2, 1, 0.
    assert image["image_complete"].tolist() == [2, 0, 2, 1, 0]
    assert image["image_profile"].tolist()[0] == "levon-and-barry.jpg"
    lab = records.form("laboratory")
    assert lab["conc"].tolist() == ["1.1 ppm", "1.2 ppm", "2.1 ppm", "2.2 ppm"]
    assert records.repeating == {"blood_pressure", "laboratory", "image"}


# --- records: longitudinal --------------------------------------------------------------------

def test_longitudinal_events_checkboxes_and_blanks():
    d = dictionary(LONG)
    records = read_records(REDCAP / LONG / "data.csv", d)
    header, rows = rows_of(LONG)
    assert records.longitudinal
    assert records.record_ids() == list(dict.fromkeys(r["study_id"] for r in rows))
    blocks = form_blocks(header)
    for form, columns in blocks.items():
        frame = records.form(form)
        holding = [r for r in rows if any(r[c] != "" for c in columns)]
        assert list(zip(frame["study_id"], frame["redcap_event_name"])) == \
            [(r["study_id"], r["redcap_event_name"]) for r in holding], form
        assert "redcap_repeat_instance" not in frame.columns
    demo = records.form("demographics")
    row = demo[(demo.study_id == "100") & (demo.redcap_event_name == "enrollment_arm_1")].iloc[0]
    source = next(r for r in rows if r["study_id"] == "100" and r["redcap_event_name"] == "enrollment_arm_1")
    # Checkbox gym: one boolean column per option, from gym___0 .. gym___4 of that row.
    for code in "01234":
        assert row[f"gym___{code}"] == (source[f"gym___{code}"] == "1")
        assert str(demo[f"gym___{code}"].dtype) == "boolean"
    # given_birth (yesno) is blank in that row: null, not False.
    assert source["given_birth"] == "" and pd.isna(row["given_birth"])
    assert str(demo["given_birth"].dtype) == "boolean"
    # weight (integer) and height (number) as in the row.
    assert row["weight"] == int(source["weight"]) and row["height"] == float(source["height"])
    assert row["dob"] == pd.Timestamp(source["dob"])
    assert row["demographics_complete"] == int(source["demographics_complete"])
    # bmi is calc: a number.
    assert str(demo["bmi"].dtype) == "Float64" and row["bmi"] == float(source["bmi"])


# --- the labels export ----------------------------------------------------------------------------

def label_export(project: str, tmp_path: Path, checkbox_labels: bool = False) -> Path:
    """The fixture as REDCap's labels export: headers and codes turned into labels with the
    dictionary CSV read here by the csv module (not by the reader)."""
    header, rows = rows_of(project)
    _, dict_rows = rows_of(project, "dictionary.csv")
    info = {r["Variable / Field Name"]: r for r in dict_rows}
    record_id = dict_rows[0]["Variable / Field Name"]

    def choices(text):
        return dict((p.split(",", 1)[0].strip(), p.split(",", 1)[1].strip()) for p in text.split("|"))

    events = {}
    if (REDCAP / project / "event.csv").exists():
        _, arms = rows_of(project, "arm.csv")
        arm_name = {a["arm_num"]: a["name"] for a in arms}
        _, event_rows = rows_of(project, "event.csv")
        events = {e["unique_event_name"]: f"{e['event_name']} (Arm {e['arm_num']}: {arm_name[e['arm_num']]})"
                  for e in event_rows}
    out_header, convert = [], []
    for h in header:
        name, _, code = h.partition("___")
        if h == record_id:
            out_header.append(info[h]["Field Label"])
            convert.append(lambda v: v)
        elif h == "redcap_event_name":
            out_header.append("Event Name")
            convert.append(lambda v: events[v])
        elif h == "redcap_repeat_instrument":
            out_header.append("Repeat Instrument")
            convert.append(lambda v: v.replace("_", " ").title() if v else v)   # a form's label
        elif h == "redcap_repeat_instance":
            out_header.append("Repeat Instance")
            convert.append(lambda v: v)
        elif h.endswith("_complete") and h not in info:
            out_header.append("Complete?")
            convert.append(lambda v: {"0": "Incomplete", "1": "Unverified", "2": "Complete"}.get(v, v))
        elif code:
            label = choices(info[name]["Choices, Calculations, OR Slider Labels"])[code]
            out_header.append(f"{info[name]['Field Label']} (choice={label})")
            if checkbox_labels:
                convert.append(lambda v, label=label: label if v == "1" else "")
            else:
                convert.append(lambda v: {"1": "Checked", "0": "Unchecked"}.get(v, v))
        else:
            out_header.append(info[h]["Field Label"])
            kind = info[h]["Field Type"]
            if kind in ("radio", "dropdown"):
                table = choices(info[h]["Choices, Calculations, OR Slider Labels"])
                convert.append(lambda v, table=table: table.get(v, v))
            elif kind == "yesno":
                convert.append(lambda v: {"1": "Yes", "0": "No"}.get(v, v))
            else:
                convert.append(lambda v: v)
    out = [[f(r[h]) for f, h in zip(convert, header)] for r in rows]
    return write(tmp_path / "labels.csv", out_header, out)


@pytest.mark.parametrize("project", [LONG, REPEAT, VIGNETTE])
def test_labels_export_gives_the_same_frames_as_the_raw_export(project, tmp_path):
    d = dictionary(project)
    raw = read_records(REDCAP / project / "data.csv", d)
    events = read_events(REDCAP / project / "event.csv", REDCAP / project / "arm.csv") \
        if (REDCAP / project / "event.csv").exists() else None
    labelled = read_records(label_export(project, tmp_path), d, events=events)
    assert labelled.repeating == raw.repeating
    for form in d.forms:
        pd.testing.assert_frame_equal(labelled.form(form), raw.form(form), obj=form)


def test_checkbox_label_export_gives_the_same_checkboxes(tmp_path):
    """REDCap's exportCheckboxLabel writes the option's label in a checked cell and leaves it blank
    otherwise; unchecked then reads as null where the raw export has 0."""
    d = dictionary(LONG)
    events = read_events(REDCAP / LONG / "event.csv", REDCAP / LONG / "arm.csv")
    raw = read_records(REDCAP / LONG / "data.csv", d).form("demographics")
    labelled = read_records(label_export(LONG, tmp_path, checkbox_labels=True), d, events=events).form("demographics")
    for column in [c for c in raw.columns if "___" in c]:
        assert labelled[column].fillna(False).tolist() == raw[column].fillna(False).tolist(), column


def test_a_label_shared_by_two_fields_is_resolved_by_column_order_or_refused(tmp_path):
    """'Height (cm)' labels both height (demographics) and height2 (baseline_data)."""
    d = dictionary(LONG)
    path = write(tmp_path / "a.csv", ["Study ID", "Event Name", "Height (cm)", "Complete?",
                                      "Serum Prealbumin (mg/dL)"],
                 [["100", "enrollment_arm_1", "160", "2", ""]])
    with pytest.raises(ImportFailed) as e:
        read_records(path, d)
    one(problems(e), "field Height (cm)", "header is ambiguous: it could be any of height, height2")
    # With the form's neighbours around it, the order decides: after date_enrolled's label, before
    # demographics' "Complete?" and the next form's first field.
    path = write(tmp_path / "b.csv", ["Study ID", "Event Name", "Weight (kilograms)", "Height (cm)",
                                      "Date subject signed consent"],
                 [["100", "enrollment_arm_1", "80", "160", "2015-04-02"]])
    with pytest.raises(ImportFailed) as e:
        read_records(path, d)
    one(problems(e), "field Height (cm)", "ambiguous")
    path = write(tmp_path / "c.csv", ["Study ID", "Event Name", "Date subject signed consent", "Height (cm)",
                                      "Complete?", "Emergency Contact Phone Number"],
                 [["100", "enrollment_arm_1", "2015-04-02", "160", "Complete", ""]])
    frame = read_records(path, d).form("demographics")
    assert frame["height"].tolist() == [160.0] and frame["demographics_complete"].tolist() == [2]


def test_codes_and_labels_are_decided_per_column(tmp_path):
    """A column of codes with one label in it: the label is the odd one out and is reported."""
    header, rows = rows_of(REPEAT)
    rows[0]["sex"] = "Male"
    with pytest.raises(ImportFailed) as e:
        read_records(write(tmp_path / "r.csv", header, rows), dictionary(REPEAT))
    one(problems(e), "record 1", "field sex", "'Male' is not one of the field's choices (0, 1)")


# --- bad exports -----------------------------------------------------------------------------------

def edited(project: str, tmp_path: Path, edit) -> Path:
    header, rows = rows_of(project)
    header = edit(header, rows) or header
    return write(tmp_path / "records.csv", header, rows)


def fails(project: str, path: Path) -> list[str]:
    with pytest.raises(ImportFailed) as e:
        read_records(path, dictionary(project))
    return problems(e)


def bp_row(rows, record: str, instance: str) -> dict[str, str]:
    return next(r for r in rows if r["record_id"] == record and r["redcap_repeat_instrument"] == "bp"
                and r["redcap_repeat_instance"] == instance)


def test_no_record_id_column(tmp_path):
    path = edited(REPEAT, tmp_path, lambda h, rows: h[1:])
    one(fails(REPEAT, path), "field record_id", "no record id column")


def test_a_column_not_in_the_dictionary(tmp_path):
    def edit(header, rows):
        rows[0]["tumour_size"] = "3"
        return header + ["tumour_size"]
    line = one(fails(REPEAT, edited(REPEAT, tmp_path, edit)), "field tumour_size", "is not in the data dictionary")
    assert "a dictionary that does not match the records" in line


def test_a_dictionary_that_does_not_match_the_records():
    with pytest.raises(ImportFailed) as e:
        read_records(REDCAP / VIGNETTE / "data.csv", dictionary(REPEAT))
    found = problems(e)
    for column in ("height", "weight", "sbp", "blood_pressure_complete", "image_profile"):
        one(found, f"field {column}", "is not in the data dictionary")


def test_an_invalid_date(tmp_path):
    path = edited(REPEAT, tmp_path, lambda h, rows: bp_row(rows, "1", "2").__setitem__("date_bp", "2019-02-30"))
    line = one(fails(REPEAT, path), "field date_bp")
    assert line == "record 1, instance 2, field date_bp: '2019-02-30' is not a date YYYY-MM-DD"


def test_a_non_integer_in_an_integer_field(tmp_path):
    path = edited(REPEAT, tmp_path, lambda h, rows: bp_row(rows, "2", "1").__setitem__("bp_systolic", "11O"))
    assert one(fails(REPEAT, path), "field bp_systolic") == \
        "record 2, instance 1, field bp_systolic: '11O' is not a whole number"


def test_values_outside_the_dictionary_min_and_max(tmp_path):
    # vignette: height number_1dp 1..100; repeating-instruments: bp_diastolic integer min 0.
    def edit(header, rows):
        rows[0]["height"] = "150.0"
    assert one(fails(VIGNETTE, edited(VIGNETTE, tmp_path, edit)), "field height") == \
        "record 1, field height: '150.0' is above the maximum 100"
    path = edited(REPEAT, tmp_path, lambda h, rows: bp_row(rows, "1", "3").__setitem__("bp_diastolic", "-5"))
    assert one(fails(REPEAT, path), "field bp_diastolic") == \
        "record 1, instance 3, field bp_diastolic: '-5' is below the minimum 0"


def test_a_code_not_in_the_choices(tmp_path):
    def edit(header, rows):
        rows[4]["race"] = "9"
    line = one(fails(REPEAT, edited(REPEAT, tmp_path, edit)), "field race")
    assert line.startswith("record 2, field race: '9' is not one of the field's choices (0, 1, 2, 3, 4, 5, 6)")


def test_a_checkbox_cell_other_than_0_or_1(tmp_path):
    def edit(header, rows):
        next(r for r in rows if r["study_id"] == "220" and r["redcap_event_name"] == "enrollment_arm_1")["meds___3"] = "2"
    assert one(fails(LONG, edited(LONG, tmp_path, edit)), "field meds___3") == \
        "record 220, event enrollment_arm_1, field meds___3: '2' is not a checkbox value (0 or 1)"


def test_a_repeat_instance_without_its_instrument(tmp_path):
    path = edited(REPEAT, tmp_path, lambda h, rows: bp_row(rows, "1", "2").__setitem__("redcap_repeat_instrument", ""))
    found = fails(REPEAT, path)
    one(found, "record 1, instance 2", "field redcap_repeat_instrument", "a repeat instance without its repeat instrument")
    # and the bp values on that row would be lost: each one is named.
    one(found, "record 1, instance 2", "field bp_systolic", "a value of repeating instrument bp on a row without")


def test_a_repeat_instrument_without_an_instance_or_not_a_form(tmp_path):
    def edit(header, rows):
        bp_row(rows, "1", "3")["redcap_repeat_instance"] = ""
        bp_row(rows, "2", "1")["redcap_repeat_instrument"] = "blood_pressure"
    found = fails(REPEAT, edited(REPEAT, tmp_path, edit))
    one(found, "record 1, field redcap_repeat_instance", "repeat instrument bp has no repeat instance")
    one(found, "record 2, instance 1, field redcap_repeat_instrument",
        "repeat instrument 'blood_pressure' is not a form of the data dictionary")


def test_a_repeat_instance_that_is_not_a_whole_number(tmp_path):
    path = edited(REPEAT, tmp_path, lambda h, rows: bp_row(rows, "1", "2").__setitem__("redcap_repeat_instance", "2b"))
    one(fails(REPEAT, path), "record 1, instance 2b", "'2b' is not a repeat instance")


def test_a_non_repeating_form_value_on_a_repeating_row(tmp_path):
    path = edited(REPEAT, tmp_path, lambda h, rows: bp_row(rows, "1", "1").__setitem__("first_name", "zzz"))
    assert one(fails(REPEAT, path), "field first_name") == \
        "record 1, instance 1, field first_name: a value of form demographics on a row of repeating instrument bp"


def test_duplicate_rows(tmp_path):
    found = fails(REPEAT, edited(REPEAT, tmp_path, lambda h, rows: rows.append(dict(bp_row(rows, "1", "2")))))
    assert one(found, "2 rows") == "record 1, instance 2: 2 rows have this record (repeat instrument bp): rows 3, 7"

    def long_edit(header, rows):
        rows.append(dict(next(r for r in rows if r["study_id"] == "304")))
    one(fails(LONG, edited(LONG, tmp_path, long_edit)), "record 304, event enrollment_arm_2", "2 rows have this record")


def test_a_blank_record_id(tmp_path):
    path = edited(REPEAT, tmp_path, lambda h, rows: rows[2].__setitem__("record_id", ""))
    one(fails(REPEAT, path), "row 3, field record_id", "the record id is blank")


def test_an_event_label_without_the_events_is_named(tmp_path):
    def edit(header, rows):
        rows[0]["redcap_event_name"] = "Enrollment"
    line = one(fails(LONG, edited(LONG, tmp_path, edit)), "field redcap_event_name")
    assert line.startswith("record 100, event Enrollment, field redcap_event_name: 'Enrollment' is not a unique event name")


def test_every_problem_is_collected_before_failing(tmp_path):
    def edit(header, rows):
        bp_row(rows, "1", "1")["date_bp"] = "14/10/2019"
        bp_row(rows, "2", "1")["bp_diastolic"] = "high"
        rows[0]["sex"] = "7"
    found = fails(REPEAT, edited(REPEAT, tmp_path, edit))
    assert len(found) == 3
    one(found, "record 1, instance 1, field date_bp")
    one(found, "record 2, instance 1, field bp_diastolic")
    one(found, "record 1, field sex")


@pytest.mark.parametrize("content, message", [
    (b"", "is empty (no header line)"),
    (b"\xff\xfe\x00r\x00e\x00c", "cannot be read"),
    (b"record_id,sex\n1,\xe9\n", "cannot be read"),
])
def test_an_empty_or_unreadable_records_file(tmp_path, content, message):
    path = tmp_path / "records.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFailed) as e:
        read_records(path, dictionary(REPEAT))
    assert message in str(e.value)


def test_a_missing_records_file(tmp_path):
    with pytest.raises(ImportFailed) as e:
        read_records(tmp_path / "nothing.csv", dictionary(REPEAT))
    assert f"records {tmp_path / 'nothing.csv'}: cannot be read" in str(e.value)


def test_header_only_export_has_no_rows():
    header, _ = rows_of(REPEAT)
    records = read_records(io.StringIO(",".join(header) + "\n"), dictionary(REPEAT))
    assert records.record_ids() == [] and len(records.form("bp")) == 0


def test_a_checkbox_code_with_a_minus_sign_is_exported_with_an_underscore(tmp_path):
    """REDCap writes a checkbox code -99 as the column name____99 (REDCapTidieR issue #31)."""
    header, *rows = list(csv.reader(open(REDCAP / REPEAT / "dictionary.csv", encoding="utf-8-sig")))
    rows.append(["symptoms", "bp", "", "checkbox", "Symptoms", "1, Headache | -99, Unknown"] + [""] * 12)
    d = read_dictionary(write(tmp_path / "dictionary.csv", header, rows))
    assert d.export_columns("bp")[-3:] == ["symptoms___1", "symptoms____99", "bp_complete"]
    data_header, data = rows_of(REPEAT)
    data_header = data_header[:-1] + ["symptoms___1", "symptoms____99", "bp_complete"]
    for row in data:
        if row["redcap_repeat_instrument"] == "bp":
            row["symptoms___1"], row["symptoms____99"] = "0", "1"
    bp = read_records(write(tmp_path / "records.csv", data_header, data), d).form("bp")
    assert bp["symptoms____99"].tolist() == [True] * 4 and bp["symptoms___1"].tolist() == [False] * 4


def test_progress_bar_on_stderr(capsys):
    read_records(REDCAP / REPEAT / "data.csv", dictionary(REPEAT), progress=True)
    assert "reading REDCap records" in capsys.readouterr().err
    read_records(REDCAP / REPEAT / "data.csv", dictionary(REPEAT), progress=False)
    assert capsys.readouterr().err == ""


def test_redcap_extra_columns_are_accepted(tmp_path):
    """An export with REDCap's data access group, survey identifier and survey timestamp columns
    (placed where REDCap puts them) reads the same forms, and the groups are exposed per record."""
    header, rows = rows_of(REPEAT)
    extra = ["redcap_data_access_group", "redcap_survey_identifier", "demographics_timestamp"]
    new_header = header[:3] + extra + header[3:]
    for row in rows:
        plain = row["redcap_repeat_instrument"] == ""
        row["redcap_data_access_group"] = {"1": "site_a", "2": "site_b"}[row["record_id"]]
        row["demographics_timestamp"] = "2019-10-14 10:01:02" if plain else ""
    d = dictionary(REPEAT)
    records = read_records(write(tmp_path / "r.csv", new_header, rows), d)
    plain = read_records(REDCAP / REPEAT / "data.csv", d)
    for form in d.forms:
        pd.testing.assert_frame_equal(records.form(form), plain.form(form), obj=form)
    assert records.data_access_groups() == {"1": "site_a", "2": "site_b"}
    assert plain.data_access_groups() == {}


def test_a_calc_redcap_could_not_compute_is_null_and_long_numbers_are_refused(tmp_path):
    header, rows = rows_of(LONG)
    rows[0]["bmi"] = "NaN"
    rows[6]["weight"] = "1234567890123456789012"
    with pytest.raises(ImportFailed) as e:
        read_records(write(tmp_path / "r.csv", header, rows), dictionary(LONG))
    assert problems(e) == ["record 220, event enrollment_arm_1, field weight: "
                           "'1234567890123456789012' is not a whole number"]
    rows[6]["weight"] = "80"
    demo = read_records(write(tmp_path / "r.csv", header, rows), dictionary(LONG)).form("demographics")
    assert pd.isna(demo["bmi"].iloc[0]) and demo["weight"].iloc[1] == 80


def test_a_large_export_reads_in_seconds(tmp_path):
    """300,000 rows x 52 columns (a repeating form on 14 of every 15 rows), generated here; the
    reader is columnar, so this takes a few seconds (1.5 million x 100 took 16 s on the 2-core
    development machine)."""
    import time

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    header, *rows = list(csv.reader(open(REDCAP / REPEAT / "dictionary.csv", encoding="utf-8-sig")))
    fields = [["record_id", "base"] + [""] * 16]
    fields += [[f"d{i}", "base", "", "text", f"D{i}", "", "", "date_ymd"] + [""] * 10 for i in range(24)]
    fields += [[f"v{i}", "visit", "", "radio", f"V{i}", "1, A | 2, B | 3, C"] + [""] * 12 for i in range(24)]
    fields[0][3] = "text"
    d = read_dictionary(write(tmp_path / "dictionary.csv", header, fields))
    n, rng = 300_000, np.random.default_rng(7)
    visit = np.arange(n) % 15 != 0
    blank = pa.scalar(None, pa.string())

    def only(mask, values):         # values on the rows of `mask`, blank elsewhere
        return pc.if_else(pa.array(mask), pa.array(values).cast(pa.string()), blank)
    cols = {"record_id": pa.array(np.arange(n) // 15 + 1).cast(pa.string()),
            "redcap_repeat_instrument": only(visit, np.full(n, "visit")),
            "redcap_repeat_instance": only(visit, np.arange(n) % 15)}
    for i in range(24):
        cols[f"d{i}"] = only(~visit, pa.array(rng.integers(16000, 19000, n).astype(np.int32), pa.date32()))
    cols["base_complete"] = only(~visit, np.full(n, 2))
    for i in range(24):
        cols[f"v{i}"] = only(visit, rng.integers(1, 4, n))
    cols["visit_complete"] = only(visit, np.full(n, 1))
    pacsv.write_csv(pa.table(cols), tmp_path / "records.csv")
    start = time.perf_counter()
    records = read_records(tmp_path / "records.csv", d)
    visits = records.form("visit")
    elapsed = time.perf_counter() - start
    print(f"read 300,000 rows x 52 columns and one form in {elapsed:.1f} s")
    assert len(visits) == int(visit.sum()) and len(records.form("base")) == n - int(visit.sum())
    assert visits["v3"].tolist()[:5] == cols["v3"].filter(pa.array(visit))[:5].to_pylist()    # raw codes, text
    assert elapsed < 30, f"{elapsed:.1f} s"


def longitudinal_with_repeats(keep_plain_220: bool = False) -> tuple[list[str], list[dict[str, str]]]:
    """The longitudinal fixture with visit_lab_data repeating in event visit_1_arm_1 (records 100
    and 220; 100 has a second instance with vld1 6.1) and event dose_1_arm_1 repeating for record
    100 (a second instance with pmq1 3), the way REDCap exports both."""
    header, rows = rows_of(LONG)
    header = header[:2] + ["redcap_repeat_instrument", "redcap_repeat_instance"] + header[2:]
    lab = ["vld1", "vld2", "vld3", "vld4", "vld5", "visit_lab_data_complete"]
    out = []
    for row in rows:
        row.update(redcap_repeat_instrument="", redcap_repeat_instance="")
        out.append(row)
        key = (row["study_id"], row["redcap_event_name"])
        if key[1] == "visit_1_arm_1" and not (keep_plain_220 and key[0] == "220"):
            moved = {h: "" for h in header} | {"study_id": key[0], "redcap_event_name": key[1],
                                               "redcap_repeat_instrument": "visit_lab_data",
                                               "redcap_repeat_instance": "1"}
            for c in lab:
                moved[c], row[c] = row[c], ""
            out.append(moved)
            if key[0] == "100":
                out.append(moved | {"redcap_repeat_instance": "2", "vld1": "6.1"})
        if key == ("100", "dose_1_arm_1"):
            row["redcap_repeat_instance"] = "1"
            out.append(row | {"redcap_repeat_instance": "2", "pmq1": "3"})
    return header, out


def test_repeating_instruments_and_events_inside_a_longitudinal_project(tmp_path):
    header, rows = longitudinal_with_repeats()
    records = read_records(write(tmp_path / "r.csv", header, rows), dictionary(LONG))
    lab = records.form("visit_lab_data")
    assert list(lab.columns[:3]) == ["study_id", "redcap_event_name", "redcap_repeat_instance"]
    got = [(r.study_id, r.redcap_event_name, None if pd.isna(r.redcap_repeat_instance) else r.redcap_repeat_instance,
            r.vld1) for r in lab.itertuples()]
    # vld1 of data.csv: 100 visit_1 5.6, 100 visit_2 .423, 220 visit_1 45.6, 220 visit_2 32.6.
    assert got == [("100", "visit_1_arm_1", 1, 5.6), ("100", "visit_1_arm_1", 2, 6.1),
                   ("100", "visit_2_arm_1", None, 0.423),
                   ("220", "visit_1_arm_1", 1, 45.6), ("220", "visit_2_arm_1", None, 32.6)]
    morale = records.form("patient_morale_questionnaire")
    dose = morale[(morale.study_id == "100") & (morale.redcap_event_name == "dose_1_arm_1")]
    assert dose["redcap_repeat_instance"].tolist() == [1, 2] and dose["pmq1"].tolist() == ["2", "3"]
    assert len(morale) == 11 and morale["redcap_repeat_instance"].isna().sum() == 9


def test_a_repeating_instruments_value_on_a_plain_row_of_its_event(tmp_path):
    header, rows = longitudinal_with_repeats(keep_plain_220=True)
    with pytest.raises(ImportFailed) as e:
        read_records(write(tmp_path / "r.csv", header, rows), dictionary(LONG))
    found = problems(e)
    assert len(found) == 6          # vld1..vld5 and visit_lab_data_complete of that row
    assert one(found, "field vld1") == ("record 220, event visit_1_arm_1, field vld1: a value of repeating "
                                        "instrument visit_lab_data on a row without redcap_repeat_instrument")


def test_other_delimiters_decimal_commas_and_spreadsheet_blank_rows(tmp_path):
    """REDCap exports with a chosen delimiter (here ';') and decimal character (','); a spreadsheet
    adds rows of empty cells. The frames are those of the plain export; row numbers stay the file's."""
    header, rows = rows_of(VIGNETTE)
    text = ";".join(header) + "\n" + ";".join([""] * len(header)) + "\n"
    text += "\n".join(";".join(r[h].replace(".", ",") if h in ("height", "weight", "bmi") else r[h]
                               for h in header) for r in rows) + "\n"
    (tmp_path / "r.csv").write_text(text)
    d = dictionary(VIGNETTE)
    records = read_records(tmp_path / "r.csv", d)
    plain = read_records(REDCAP / VIGNETTE / "data.csv", d)
    for form in d.forms:
        pd.testing.assert_frame_equal(records.form(form), plain.form(form), obj=form)
    (tmp_path / "r.csv").write_text(text.replace("\n1;image;2;", "\n1;image;1;"))
    with pytest.raises(ImportFailed) as e:
        read_records(tmp_path / "r.csv", d)
    # data rows 8 and 9 of the file (the blank row is row 1).
    assert problems(e) == ["record 1, instance 1: 2 rows have this record (repeat instrument image): rows 8, 9"]


def test_a_row_with_a_stray_delimiter(tmp_path):
    header, rows = rows_of(REPEAT)
    text = (REDCAP / REPEAT / "data.csv").read_text().replace("1,bp,2,,", "1,bp,2,,,", 1)
    (tmp_path / "r.csv").write_text(text)
    with pytest.raises(ImportFailed) as e:
        read_records(tmp_path / "r.csv", dictionary(REPEAT))
    assert problems(e) == [f"records {tmp_path / 'r.csv'}, the row '1,bp,2,,,,,,,,,,2019-10-14,111,101,2': "
                           "has 16 cells where the header has 15 (a stray ',' or a missing one?)"]


def test_datetimes_times_dmy_dates_and_today_bounds(tmp_path):
    """A small project of our own for validations the fixtures lack (REDCap's validation names)."""
    header, *_ = list(csv.reader(open(REDCAP / REPEAT / "dictionary.csv", encoding="utf-8-sig")))
    blank = [""] * 8
    fields = [["pid", "visit", "", "text", "Patient"] + [""] * 13,
              ["seen_at", "visit", "", "text", "Seen at", "", "", "datetime_seconds_ymd", "", ""] + blank,
              ["clock", "visit", "", "text", "Clock", "", "", "time", "", ""] + blank,
              ["born", "visit", "", "text", "Born", "", "", "date_dmy", "1900-01-01", "today"] + blank,
              ["ok", "visit", "", "truefalse", "OK"] + [""] * 13]
    d = read_dictionary(write(tmp_path / "d.csv", header, fields))
    data = [["1", "2024-05-06 07:08:09", "23:59", "31/12/1999", "True", "2"],
            ["2", "2024-05-06 07:08", "07:05", "1999-12-31", "False", "0"]]
    frame = read_records(write(tmp_path / "r.csv", ["pid", "seen_at", "clock", "born", "ok", "visit_complete"], data),
                         d).form("visit")
    assert frame["seen_at"].tolist() == [pd.Timestamp("2024-05-06 07:08:09"), pd.Timestamp("2024-05-06 07:08")]
    assert frame["born"].tolist() == [pd.Timestamp("1999-12-31")] * 2
    assert frame["ok"].tolist() == [True, False] and frame["clock"].tolist() == ["23:59", "07:05"]
    tomorrow = (pd.Timestamp.today() + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    data = [["1", "2024-05-06 25:08", "24:00", tomorrow, "yes", "2"]]
    with pytest.raises(ImportFailed) as e:
        read_records(write(tmp_path / "r.csv", ["pid", "seen_at", "clock", "born", "ok", "visit_complete"], data), d)
    assert problems(e) == [
        "record 1, field seen_at: '2024-05-06 25:08' is not a date and time YYYY-MM-DD HH:MM",
        "record 1, field clock: '24:00' is not a time HH:MM",
        f"record 1, field born: '{tomorrow}' is above the maximum today",
        "record 1, field ok: 'yes' is not 1 (True) or 0 (False)"]


def test_instrument_labels_given_and_events_file_checked(tmp_path):
    header, rows = rows_of(REPEAT)
    for row in rows:
        if row["redcap_repeat_instrument"] == "bp":
            row["redcap_repeat_instrument"] = "Blood pressure readings"
    path = write(tmp_path / "r.csv", header, rows)
    d = dictionary(REPEAT)
    with pytest.raises(ImportFailed) as e:
        read_records(path, d)
    # One problem per row, naming it; not one more for each value on those rows.
    assert problems(e) == [f"record {r}, instance {i}, field redcap_repeat_instrument: repeat instrument "
                           "'Blood pressure readings' is not a form of the data dictionary"
                           for r, i in (("1", 1), ("1", 2), ("1", 3), ("2", 1))]
    records = read_records(path, d, instruments={"bp": "Blood pressure readings"})
    pd.testing.assert_frame_equal(records.form("bp"), read_records(REDCAP / REPEAT / "data.csv", d).form("bp"))
    with pytest.raises(ImportFailed) as e:
        read_events(REDCAP / LONG / "arm.csv")
    assert "is not a REDCap events export (columns event_name, arm_num, unique_event_name)" in str(e.value)


def test_a_dictionary_missing_only_optional_columns_reads(tmp_path):
    """A hand-edited dictionary that lost 'Field Annotation' and 'Section Header' still reads (they are
    blank); one without 'Text Validation Type OR Show Slider Number' does not."""
    header, *rows = list(csv.reader(open(REDCAP / REPEAT / "dictionary.csv", encoding="utf-8-sig")))
    keep = [i for i, h in enumerate(header) if h not in ("Field Annotation", "Section Header")]
    d = read_dictionary(write(tmp_path / "d.csv", [header[i] for i in keep], [[r[i] for i in keep] for r in rows]))
    assert d.fields == dictionary(REPEAT).fields
    keep = [i for i, h in enumerate(header) if h != "Text Validation Type OR Show Slider Number"]
    with pytest.raises(ImportFailed) as e:
        read_dictionary(write(tmp_path / "d.csv", [header[i] for i in keep], [[r[i] for i in keep] for r in rows]))
    assert "no column 'Text Validation Type OR Show Slider Number'" in str(e.value)


def test_a_missing_record_id_and_unknown_columns_are_reported_together(tmp_path):
    header, rows = rows_of(REPEAT)
    rows[0]["tumour_size"] = "3"
    with pytest.raises(ImportFailed) as e:
        read_records(write(tmp_path / "r.csv", header[1:] + ["tumour_size"], rows), dictionary(REPEAT))
    found = problems(e)
    assert len(found) == 2
    one(found, "field record_id", "no record id column")
    one(found, "field tumour_size", "is not in the data dictionary")


def test_an_event_not_in_the_projects_events(tmp_path):
    header, rows = rows_of(LONG)
    rows[1]["redcap_event_name"] = "dose_9_arm_1"
    events = read_events(REDCAP / LONG / "event.csv", REDCAP / LONG / "arm.csv")
    with pytest.raises(ImportFailed) as e:
        read_records(write(tmp_path / "r.csv", header, rows), dictionary(LONG), events=events)
    assert problems(e) == ["record 100, event dose_9_arm_1, field redcap_event_name: "
                           "'dose_9_arm_1' is not a unique event name of the project's events"]
