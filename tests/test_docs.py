"""Docs are tested: a view, a table, a column, a validator rule, an export or a filter that the
code has and the docs do not is a failing test, and so is a broken link (datasette's
test_docs.py does the same for its settings and hooks).

What is checked:
- docs/queries.md has a section headed with the view name in backticks for every queries/*.sql
  and none for a view that does not exist; each section names every column of its view; every filter variable is named;
  only the views the page says read filter variables do.
- docs/snapshot-contract.md documents every table and column of dashboard.contract.TABLES with
  the type, nullability, codes and bounds the validator enforces, and every rule the validator
  runs under the right level (error or warning).
- README.md names every export of dashboard.exports.EXPORTS and every filter key of
  dashboard.filters.KEYS, and the two commands `make run` and `make test`; CI runs `make test`.
- Every relative link in README.md and docs/*.md points to an existing file (and heading).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dashboard import exports
from dashboard.contract import TABLES
from dashboard.filters import KEYS
from dashboard.validate import _duck_type

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
QUERIES = ROOT / "queries"
README = ROOT / "README.md"
MARKDOWN = [README] + sorted(DOCS.glob("*.md"))


# --- helpers ----------------------------------------------------------------------------------
def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def without_code_blocks(text: str) -> str:
    """The text with fenced code blocks removed (a '#' line in a bash block is not a heading)."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.M | re.S)


def sections(text: str, level: int) -> dict[str, str]:
    """Heading text -> body up to the next heading of the same or a higher level."""
    text = without_code_blocks(text)
    pattern = re.compile(rf"^(#{{1,{level}}}) (.+?)\s*$", re.M)
    out, matches = {}, list(pattern.finditer(text))
    for i, m in enumerate(matches):
        if len(m.group(1)) != level:
            continue
        end = next((n.start() for n in matches[i + 1:] if len(n.group(1)) <= level), len(text))
        out[m.group(2)] = text[m.end():end]
    return out


def named_sections(text: str, level: int) -> dict[str, str]:
    """Sections whose heading is exactly one name in backticks: '## `cohort`' -> 'cohort'."""
    return {m.group(1): body for heading, body in sections(text, level).items()
            if (m := re.fullmatch(r"`([^`]+)`", heading))}


def table_rows(body: str) -> dict[str, list[str]]:
    """Markdown table rows whose first cell is a name in backticks: name -> the other cells."""
    rows = {}
    for line in body.splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6} (.+?)\s*$", without_code_blocks(read(path)), re.M):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


# --- docs/queries.md --------------------------------------------------------------------------
QUERIES_MD = DOCS / "queries.md"
VIEWS = sorted(p.stem for p in QUERIES.glob("*.sql"))


def view_sections() -> dict[str, str]:
    return named_sections(read(QUERIES_MD), 2)


def test_every_view_has_a_section_in_queries_md():
    documented = set(view_sections())
    assert not set(VIEWS) - documented, \
        f"views without a '## `<name>`' section in docs/queries.md: {sorted(set(VIEWS) - documented)}"
    assert not documented - set(VIEWS), \
        f"docs/queries.md documents views that queries/ does not have: {sorted(documented - set(VIEWS))}"


@pytest.mark.parametrize("view", VIEWS)
def test_view_section_names_every_column(view, mini_snapshot):
    from dashboard import data
    body = view_sections().get(view)
    if body is None:
        pytest.fail(f"docs/queries.md has no section for the view {view!r}")
    columns = data.execute(f'describe "{view}"', mini_snapshot)["column_name"].tolist()
    missing = [c for c in columns if f"`{c}`" not in body]
    assert not missing, f"docs/queries.md, section `{view}`: columns not described: {missing}"


def test_filter_variables_are_documented():
    text = read(QUERIES_MD)
    missing = [f"f_{k}" for k in KEYS if f"`f_{k}`" not in text]
    if "`scope_sites`" not in text:
        missing.append("scope_sites")
    assert not missing, f"docs/queries.md does not name the DuckDB variables {missing}"


def test_only_cohort_and_sites_in_scope_read_filters_and_scope():
    """docs/queries.md says only these two views read the filters (f_*) and the scope; other
    variables (page options such as the safety page's episode filters) are documented per view."""
    import re
    pattern = re.compile(r"getvariable\(\s*'(f_[a-z_]+|scope_sites)'\s*\)", re.I)
    readers = sorted(p.stem for p in QUERIES.glob("*.sql") if pattern.search(read(p)))
    assert readers == ["cohort", "sites_in_scope"], \
        f"views reading filter or scope variables: {readers}; update 'Filters and site scope' in docs/queries.md"
    sections = named_sections(read(DOCS / "queries.md"), 2)
    for p in QUERIES.glob("*.sql"):
        for var in set(re.findall(r"getvariable\(\s*'([a-z_]+)'", read(p), re.I)) - {"scope_sites"}:
            if var.startswith("f_"):
                continue        # filters: documented together under 'Filters and site scope'
            assert var in sections.get(p.stem, ""), f"queries/{p.name} reads variable {var!r}: document it"


# --- docs/snapshot-contract.md ----------------------------------------------------------------
CONTRACT_MD = DOCS / "snapshot-contract.md"


def contract_sections() -> dict[str, str]:
    return named_sections(read(CONTRACT_MD), 3)


def test_every_contract_table_has_a_section():
    documented = set(contract_sections())
    assert not set(TABLES) - documented, \
        f"tables without a '### `<name>`' section in docs/snapshot-contract.md: {sorted(set(TABLES) - documented)}"
    assert not documented - set(TABLES), \
        f"docs/snapshot-contract.md documents tables that the contract does not have: {sorted(documented - set(TABLES))}"


@pytest.mark.parametrize("name", list(TABLES))
def test_contract_columns_are_documented_as_enforced(name):
    table = TABLES[name]
    body = contract_sections().get(name)
    if body is None:
        pytest.fail(f"docs/snapshot-contract.md has no section for the table {name!r}")
    rows = table_rows(body)
    problems = []
    for col in table.columns:
        cells = rows.get(col.name)
        if cells is None:
            problems.append(f"{col.name}: no row")
            continue
        type_, null_ok, rule = (cells + ["", "", ""])[:3]
        if type_ != _duck_type(col.type):
            problems.append(f"{col.name}: type {type_!r}, the contract says {_duck_type(col.type)}")
        if null_ok != ("yes" if col.nullable else "no"):
            problems.append(f"{col.name}: 'null ok' is {null_ok!r}, nullable={col.nullable}")
        for code in col.accepted or ():
            if f"'{code}'" not in rule:
                problems.append(f"{col.name}: accepted code '{code}' not listed")
        if col.min is not None and col.max is not None:
            bound = f"{col.min:g}..{col.max:g}"
        elif col.min is not None:
            bound = f">= {col.min:g}"
        elif col.max is not None:
            bound = f"<= {col.max:g}"
        else:
            bound = None
        if bound and bound not in rule:
            problems.append(f"{col.name}: bound {bound!r} not stated")
        if col.gt is not None and f"> {col.gt:g}" not in rule:
            problems.append(f"{col.name}: bound '> {col.gt:g}' not stated")
    extra = sorted(set(rows) - set(table.column_names))
    if extra:
        problems.append(f"columns documented but not in the contract: {extra}")
    for key in table.key:
        if f"`{key}`" not in body.split("|", 1)[0]:
            problems.append(f"key column {key} not named before the table")
    for _, ref, _ in table.references:
        if f"`{ref}`" not in body:
            problems.append(f"reference to {ref} not mentioned")
    assert not problems, f"docs/snapshot-contract.md, table {name}:\n  " + "\n  ".join(problems)


def _rule_stem(node: ast.AST) -> str | None:
    """The literal text of a rule argument, or its leading literal part when it is built."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return node.values[0].value.strip()
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _rule_stem(node.left)
    return None


def validator_rules() -> list[tuple[str, str | None, str | None, str]]:
    """(level, table, column, rule text) of every offenders(...) call in dashboard/validate.py;
    table/column are None where computed, rule text is the literal stem where built."""
    tree = ast.parse(read(ROOT / "dashboard" / "validate.py"))
    levels = {"E": "error", "W": "warning", "error": "error", "warning": "warning"}
    found = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "offenders" and len(call.args) >= 4):
            continue
        level_node, table_node, column_node, rule_node = call.args[:4]
        if isinstance(rule_node, ast.Attribute):        # the shared warnings' loop: read from dashboard/quality.py below
            continue
        level = level_node.id if isinstance(level_node, ast.Name) else getattr(level_node, "value", None)
        const = lambda n: n.value if isinstance(n, ast.Constant) else None  # noqa: E731
        rule = _rule_stem(rule_node)
        assert level in levels and rule, f"cannot read the rule at validate.py line {call.lineno}"
        found.append((levels[level], const(table_node), const(column_node), rule))
    from dashboard.quality import validator_rules as shared
    return found + [("warning", r.table, r.column, r.rule) for r in shared()]


def test_validator_finds_rules():
    assert len(validator_rules()) > 20


# The validator's cross-table, date-order and warning rules, written out by hand from
# docs/snapshot-contract.md ("Errors" step 4 and "Warnings"), never read from validate.py: a rule
# deleted from validate.py leaves its line here, and tests/test_validate.py
# (test_every_written_out_rule_fires_on_a_broken_case) fails. (level, table, column, rule as printed);
# table and column None where the validator computes them.
WRITTEN_OUT_RULES = [
    ("error", "patients", "child_pugh_class", "must agree with child_pugh_score (A 5-6, B 7-9, C 10-15)"),
    ("error", "patients", "last_known_alive_date", "must be on or after first_treatment_date"),
    ("error", "patients", "death_date", "must be on or after first_treatment_date"),
    ("error", "patients", "last_known_alive_date", "must be on or before death_date"),
    ("error", "patients", "off_study_date", "must be on or after first_treatment_date"),
    ("error", "treatments", "treatment_date", "session 1 must be on first_treatment_date"),
    ("error", "treatments", "treatment_date", "must be on or after first_treatment_date"),
    ("error", "treatments", "treatment_date", "must be on or before death_date"),
    ("error", "lesions", "is_target", "at most 2 intrahepatic target lesions per patient"),
    ("error", "lesions", "is_target", "at most 5 target lesions per patient"),
    ("error", "imaging", "imaging_date", "baseline must be on or before first_treatment_date"),
    ("error", "imaging", "imaging_date", "follow-up imaging must be after first_treatment_date"),
    ("error", "imaging", "imaging_date", "must be on or before death_date"),
    ("error", "imaging", "overall_response", "null only at baseline"),
    ("error", "lesion_measurements", "non_target_status", "must be null for target lesions"),
    ("error", "lesion_measurements", "non_target_status", "must be given for non-target lesions"),
    ("error", "lesion_measurements", "viable_diameter_mm", "must be null for non-target lesions"),
    ("error", "staging", "review_date", "must be after first_treatment_date"),
    ("error", "staging", "review_date", "must be on or before death_date"),
    ("error", "adverse_events", "onset_date", "must be on or after first_treatment_date"),
    ("error", "adverse_events", "resolution_date", "must be on or after onset_date"),
    ("error", "adverse_events", "grade", "grade 5 requires the patient's death_date"),
    ("error", "adverse_events", "onset_date", "must be on or before death_date"),
    ("warning", None, None, "column not in the contract (ignored)"),
    ("warning", "patients", "off_study_reason", "off_study_date and off_study_reason should be given together"),
    ("warning", "patients", "off_study_reason", "a patient with a death_date should be off study for 'death'"),
    ("warning", "patients", "first_treatment_date", "before the site's activation_date"),
    ("warning", "patients", "patient_id", "has no session 1 in treatments"),
    ("warning", "imaging", "overall_response", "a response recorded at baseline"),
    ("warning", "imaging", "local_response", "a response recorded at baseline"),
    ("warning", "imaging", "visit", "patient followed over six months with no post-baseline imaging"),
    ("warning", "lesion_measurements", "viable_diameter_mm", "target lesion not measured at a scan"),
    ("warning", "imaging", "visit", "follow-up scan with no lesion measurements"),
    ("warning", "imaging", "overall_response",
     "recorded response contradicts the target-lesion response implied by the measurements"),
    ("warning", "adverse_events", "soc", "the same term is filed under more than one soc"),
    ("warning", "adverse_events", "term", "term not in the registry's CTCAE v4.0 list (check spelling)"),
    # issue 14 item 9 (manifest `rows` type, `created_at` format and corrupt files are manifest and
    # file errors, tested in tests/test_validate_faults.py; this one is a contract rule)
    ("warning", "lesion_measurements", "viable_diameter_mm", "target lesion has no measurement row at a scan"),
]


# The column rules of docs/snapshot-contract.md step 3 ("Column rules"), generated for every column
# from contract.py: errors whose table and column the validator fills in; the rule as printed starts so.
WRITTEN_OUT_COLUMN_RULES = ["must not be null", "value outside the accepted codes", "must be >=", "must be <=",
                            "must be >", "duplicate key", "must reference an existing", "date after the cut-off"]


def test_the_contract_page_lists_the_written_out_column_rules():
    bodies = [b for h, b in sections(read(CONTRACT_MD), 3).items() if h.startswith("Errors")]
    missing = [r for r in WRITTEN_OUT_COLUMN_RULES if "| `" + r not in bodies[0] and ", `" + r not in bodies[0]]
    assert not missing, f"column rules not in the Errors section of docs/snapshot-contract.md: {missing}"


def documented_rule_rows() -> set[tuple[str, str | None, str | None, str]]:
    """The rows `table.column` | rule of the Errors and Warnings sections of the contract page."""
    out = set()
    for heading, body in sections(read(CONTRACT_MD), 3).items():
        level = "error" if heading.startswith("Errors") else "warning" if heading.startswith("Warnings") else None
        if level is None:
            continue
        for line in body.splitlines():
            m = re.match(r"^\|\s*`(<table>|[a-z_]+)\.(<column>|[a-z_]+)`\s*\|\s*(.+?)\s*\|\s*$", line)
            if m:
                table, column = (None, None) if m.group(1) == "<table>" else (m.group(1), m.group(2))
                out.add((level, table, column, m.group(3)))
    return out


def test_the_contract_page_lists_exactly_the_written_out_rules():
    documented, written = documented_rule_rows(), set(WRITTEN_OUT_RULES)
    assert len(written) == len(WRITTEN_OUT_RULES), "a rule is written out twice"
    assert not written - documented, f"written out here, not in docs/snapshot-contract.md: {sorted(written - documented, key=str)}"
    assert not documented - written, f"in docs/snapshot-contract.md, not written out here: {sorted(documented - written, key=str)}"


def _same_rule(written, found) -> bool:
    (level, table, column, rule), (f_level, f_table, f_column, f_rule) = written, found
    return (level == f_level and (f_table is None or table == f_table) and (f_column is None or column == f_column)
            and rule.startswith(f_rule))


def test_every_rule_validate_py_runs_is_written_out():
    """validate.py -> this list: a rule added to the code without its documentation fails."""
    written = WRITTEN_OUT_RULES + [("error", None, None, r) for r in WRITTEN_OUT_COLUMN_RULES]
    missing = [r for r in validator_rules() if not any(_same_rule(w, r) or w[3].startswith(r[3].strip())
                                                       and r[1] is None and w[1] is None for w in written)]
    assert not missing, f"rules in validate.py not written out in WRITTEN_OUT_RULES (and the docs): {missing}"


def test_every_written_out_rule_has_a_query_in_validate_py():
    """This list -> validate.py, statically (tests/test_validate.py checks each one fires on a broken case)."""
    found, source = validator_rules(), read(ROOT / "dashboard" / "validate.py")
    # a rule recorded with add() rather than offenders() (a column not in the contract) is found as text
    missing = [w for w in WRITTEN_OUT_RULES if not any(_same_rule(w, r) for r in found) and f'"{w[3]}"' not in source]
    assert not missing, f"documented rules validate.py does not run: {missing}"


@pytest.mark.parametrize("level,table,column,rule", validator_rules())
def test_every_validator_rule_is_documented(level, table, column, rule):
    heading = {"error": "Errors", "warning": "Warnings"}[level]
    bodies = [b for h, b in sections(read(CONTRACT_MD), 3).items() if h.startswith(heading)]
    assert bodies, f"docs/snapshot-contract.md has no '### {heading}...' section"
    lines = bodies[0].splitlines()
    if table and column:
        hit = any(f"`{table}.{column}`" in ln and rule in ln for ln in lines)
        where = f"a row `{table}.{column}` | {rule}"
    else:
        hit = any(rule in ln for ln in lines)
        where = repr(rule)
    assert hit, f"docs/snapshot-contract.md, section {heading}: {where} is missing ({level} in validate.py)"


# --- README.md --------------------------------------------------------------------------------
def registered_exports() -> dict:
    """Every export, once the per-page export modules have registered theirs."""
    exports._load_all()
    return dict(exports.EXPORTS)


EXPORTS = registered_exports()


def test_exports_are_registered():
    assert {"patients", "enrollment"} <= set(EXPORTS), \
        "dashboard.exports registered no export: the README check below would pass vacuously"


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_readme_names_every_export(name):
    if f"`{name}`" not in read(README):
        pytest.fail(f"README.md does not list the export `{name}` ({EXPORTS[name].help}); "
                    "add it to the exports of 'Command line'", pytrace=False)


@pytest.mark.parametrize("key", KEYS)
def test_readme_names_every_filter_key(key):
    if f"`{key}`" not in read(README):
        pytest.fail(f"README.md does not list the filter key `{key}`", pytrace=False)


def test_readme_commands_are_what_ci_runs():
    readme = read(README)
    for command in ("make run", "make test"):
        assert command in readme, f"README.md does not name `{command}`"
    makefile = read(ROOT / "Makefile")
    for target in ("run", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no `{target}` target"
    ci = [ln.strip() for ln in read(ROOT / ".ci" / "run").splitlines()
          if ln.strip() and not ln.strip().startswith("#")]
    assert "make test" in ci, ".ci/run does not run `make test`"


# --- links ------------------------------------------------------------------------------------
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "code", without_code_blocks(read(path)))
    targets = LINK.findall(text) + REF_LINK.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: broken links:\n  " + "\n  ".join(broken)
