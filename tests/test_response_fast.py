"""The Tumour response page at 100,000 patients: the faster paths give exactly what the slower ones
gave, on hand-built and synthetic registries, several filters and both response scopes.

- exports: `waterfall`, `response-summary`, `spider`, `swimmer` and `response-consistency` against
  the code they replaced (copied below as the reference: the pandas sorting and per-group counting
  of dashboard/analytics/response.py, the spider sample drawn in Python, the consistency rows
  filtered in pandas from the view as it was written). Equality is exact (columns, values, dtypes,
  row order). Where the old SQL left the order of tied rows to chance (two marks of a lane on one
  day, two scans of a patient on one date) the reference uses the new deterministic tie-breakers.
- the swimmer card reads the lane order and the marks of the page's lanes only: every page equals
  the same lanes sliced out of the full `swimmer` export, and the export itself is never run.
- the consistency table shows at most CONSISTENCY_MAX_ROWS scans, with a note when the CSV has more.
- the waterfall figure is built from unicode arrays (plotly serialises them in one call) whose
  numbers read back as the exact floats of the export.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from dashboard import data, exports
from dashboard.analytics import response as resp
from dashboard.analytics.proportions import clopper_pearson
from dashboard.exports import response as rx
from dashboard.filters import Filters
from dashboard.figures import response as figs
from dashboard.grouping import ALL, GROUPINGS, check_by, group_column, ordered_levels
from fixtures import mini_registry, write_snapshot
from test_response_page import SNAP, response_registry

SCOPES = ("overall", "local")


# --- the reference: the code as it was -------------------------------------------------------------
def old_summarise(best, group):
    n = len(best)
    counts = {b.lower(): int((best["bor"] == b).sum()) for b in resp.BOR_ORDER}
    evaluable = best[resp.is_evaluable(best)]
    n_ev = len(evaluable)
    row = {"group": group, "n": n, "n_evaluable": n_ev, **counts}
    for name, cats in (("orr", resp.RESPONDERS), ("dcr", resp.CONTROLLED)):
        row[name], row[f"{name}_ci_lower"], row[f"{name}_ci_upper"] = \
            clopper_pearson(int(best["bor"].isin(cats).sum()), n)
        row[f"{name}_evaluable"], row[f"{name}_evaluable_ci_lower"], row[f"{name}_evaluable_ci_upper"] = \
            clopper_pearson(int(evaluable["bor"].isin(cats).sum()), n_ev)
    row["is_small_group"] = n < resp.SMALL_GROUP
    return row


def old_response_summary(best, cohort, by="none"):
    by = check_by(by)
    groups = group_column(cohort, by)
    labelled = best.merge(pd.DataFrame({"patient_id": cohort["patient_id"], "group": groups.values}),
                          on="patient_id", how="left")
    rows = []
    if by != "none":
        for level in ordered_levels(by, labelled["group"].dropna()):
            rows.append(old_summarise(labelled[labelled["group"] == level], level))
    rows.append(old_summarise(labelled, ALL))
    out = pd.DataFrame(rows, columns=resp.SUMMARY_COLUMNS)
    return out if len(best) else out.iloc[0:0]


def old_waterfall_rows(best):
    rows = best[resp.is_evaluable(best)]
    rows = rows.sort_values(["best_pct_change", "patient_id"], ascending=[False, True], kind="mergesort")
    return rows[resp.WATERFALL_COLUMNS].reset_index(drop=True)


def old_swimmer_order(events, sort="time_desc"):
    lanes = events.drop_duplicates("patient_id")[["patient_id", "time_on_study_days", "bor"]].copy()
    lanes["bor_rank"] = lanes["bor"].map({b: i for i, b in enumerate(resp.BOR_ORDER)}).fillna(len(resp.BOR_ORDER))
    keys = {"time_desc": (["time_on_study_days", "patient_id"], [False, True]),
            "time_asc": (["time_on_study_days", "patient_id"], [True, True]),
            "bor": (["bor_rank", "time_on_study_days", "patient_id"], [True, False, True]),
            "patient": (["patient_id"], [True])}
    cols, ascending = keys.get(sort, keys["time_desc"])
    return lanes.sort_values(cols, ascending=ascending, kind="mergesort")["patient_id"].tolist()


def old_swimmer_rows(events):
    order = {pid: i for i, pid in enumerate(old_swimmer_order(events, "time_desc"))}
    kind = {"session": 0, "scan": 1, "first_pd": 2, "death": 3, "last_contact": 3}
    out = events.assign(_lane=events["patient_id"].map(order), _kind=events["event"].map(kind))
    out = out.sort_values(["_lane", "day", "_kind"], kind="mergesort").drop(columns=["_lane", "_kind", "scope"],
                                                                            errors="ignore")
    return out.reset_index(drop=True)


# queries/response_consistency.sql before the lesion checks became correlated EXISTS
OLD_CONSISTENCY_SQL = """
with measured as (
    select t.*,
        min(t.sum_mm) over (partition by t.scope, t.patient_id order by t.imaging_date
                            rows between unbounded preceding and 1 preceding) as nadir_before_mm
    from tumour_burden t
    where t.sum_mm is not null
),
non_target as (
    select m.patient_id, m.visit,
        bool_or(m.non_target_status = 'unequivocal_progression') as has_non_target_progression,
        bool_or(m.non_target_status <> 'absent') as has_non_target_present
    from stg_lesion_measurements m
    join stg_lesions l using (patient_id, lesion_id)
    where not l.is_target
    group by all
),
judged as (
    select m.scope, m.patient_id, m.visit, m.imaging_date, m.response as recorded,
        case when m.sum_mm = 0 then 'CR'
             when m.sum_mm >= 1.2 * m.nadir_before_mm and m.sum_mm > m.nadir_before_mm then 'PD'
             when m.sum_mm <= 0.7 * m.baseline_mm then 'PR'
             else 'SD' end as implied,
        m.sum_mm, m.baseline_mm, m.nadir_before_mm, m.pct_change,
        case when m.nadir_before_mm > 0
             then 100.0 * (m.sum_mm - m.nadir_before_mm) / m.nadir_before_mm end as pct_from_nadir,
        coalesce(i.has_new_lesion, false) as has_new_lesion,
        coalesce(n.has_non_target_progression, false) as has_non_target_progression,
        coalesce(n.has_non_target_present, false) as has_non_target_present
    from measured m
    join stg_imaging i using (patient_id, visit)
    left join non_target n using (patient_id, visit)
    where not m.is_baseline and m.baseline_mm > 0
),
final as (
    select j.scope, j.patient_id, c.site_id, c.bclc_stage, j.visit, j.imaging_date,
        j.recorded, j.implied, j.sum_mm, j.baseline_mm, j.nadir_before_mm, j.pct_change, j.pct_from_nadir,
        j.has_new_lesion, j.has_non_target_progression, j.has_non_target_present,
        coalesce(j.recorded <> 'NE' and j.implied <> j.recorded
                 and not (j.scope = 'overall' and j.recorded = 'PD'
                          and (j.has_new_lesion or j.has_non_target_progression))
                 and not (j.scope = 'overall' and j.recorded = 'PR' and j.implied = 'CR'
                          and j.has_non_target_present), false) as is_discrepant
    from judged j
    join cohort c using (patient_id)
)
select * from final
"""


def scoped(snapshot, filters, sql, scope, order):
    return data.execute(f"select * from ({sql}) where scope = ? order by {order}", snapshot, filters,
                        data.ALL_SITES, params=[scope])


def old_export(name, snapshot, filters, scope, by=None):
    """(rows, extra) of an export as the code before computed them."""
    n = len(data.query("cohort", snapshot, filters))
    if name == "waterfall":
        best = rx.best_response(snapshot, filters, data.ALL_SITES, scope)
        reasons = resp.not_evaluable_counts(best)
        return old_waterfall_rows(best), len(best), {"scope": scope, "n_not_evaluable": sum(reasons.values()),
                                                     "not_evaluable_reasons": reasons}
    if name == "response-summary":
        best = rx.best_response(snapshot, filters, data.ALL_SITES, scope)
        cohort = data.query("cohort", snapshot, filters)
        return old_response_summary(best, cohort, by), len(best), {"scope": scope, "by": check_by(by)}
    if name == "spider":
        rows = scoped(snapshot, filters, "select * from spider_points", scope, "patient_id, imaging_date")
        rows = rows.drop(columns=["scope"])
        evaluable = rows["patient_id"].unique()
        if len(evaluable) > rx.SPIDER_MAX_PATIENTS:
            keep = sorted(evaluable, key=lambda p: hashlib.sha256(p.encode()).hexdigest())[:rx.SPIDER_MAX_PATIENTS]
            rows = rows[rows["patient_id"].isin(keep)].reset_index(drop=True)
        return rows, n, {"scope": scope, "n_patients_drawn": int(rows["patient_id"].nunique()),
                         "n_patients_evaluable": int(len(evaluable)), "max_patients": rx.SPIDER_MAX_PATIENTS}
    if name == "swimmer":
        events = scoped(snapshot, filters, "select * from swimmer_events", scope, rx.SWIMMER_MARK_ORDER)
        rows = old_swimmer_rows(events)
        return rows, n, {"scope": scope, "n_lanes": int(rows["patient_id"].nunique())}
    if name == "response-consistency":
        rows = scoped(snapshot, filters, OLD_CONSISTENCY_SQL, scope, "patient_id, imaging_date, visit")
        n_checked = int(rows["patient_id"].nunique())
        rows = rows[rows["is_discrepant"]][rx.CONSISTENCY_COLUMNS].reset_index(drop=True)
        return rows, n, {"scope": scope, "n_patients_checked": n_checked,
                         "n_patients_flagged": int(rows["patient_id"].nunique())}
    raise KeyError(name)


# --- registries ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def snapshots(tmp_path_factory, synthetic_root):
    response = tmp_path_factory.mktemp("response-fast")
    write_snapshot(response, SNAP, response_registry())
    mini = tmp_path_factory.mktemp("mini-fast")
    write_snapshot(mini, "2024-12-31", mini_registry())
    return {"response": data.resolve("latest", response), "mini": data.resolve("latest", mini),
            "synthetic": data.resolve("latest", synthetic_root)}


@pytest.fixture
def no_cache(monkeypatch):
    monkeypatch.setenv("REGISTRY_CACHE", "off")


FILTERS = {"response": [Filters(), Filters(site=("S02",)), Filters(bclc=("0",))],
           "mini": [Filters(), Filters(bclc=("C",))],
           "synthetic": [Filters(), Filters(bclc=("B", "C")), Filters(site=("S01", "S03")),
                         Filters(sex=("F",), etiology=("HBV",))]}
CASES = [(registry, i) for registry, filters in FILTERS.items() for i in range(len(filters))]


def assert_same(new: exports.Export, old):
    rows, n, extra = old
    pd.testing.assert_frame_equal(new.rows, rows, check_exact=True)
    assert new.n_patients == n
    assert new.extra == extra


@pytest.mark.parametrize("registry, i", CASES)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("name", ["waterfall", "spider", "swimmer", "response-consistency"])
def test_exports_equal_the_code_they_replaced(snapshots, no_cache, registry, i, scope, name):
    snapshot, filters = snapshots[registry], FILTERS[registry][i]
    new = exports.EXPORTS[name].func(snapshot, filters, data.ALL_SITES, response_scope=scope)
    assert_same(new, old_export(name, snapshot, filters, scope))


@pytest.mark.parametrize("registry, i", CASES)
@pytest.mark.parametrize("by", list(GROUPINGS))
def test_response_summary_equals_the_per_group_computation(snapshots, no_cache, registry, i, by):
    snapshot, filters = snapshots[registry], FILTERS[registry][i]
    for scope in SCOPES:
        new = rx.response_summary_export(snapshot, filters, data.ALL_SITES, response_scope=scope, by=by)
        assert_same(new, old_export("response-summary", snapshot, filters, scope, by))


def test_spider_sample_is_chosen_in_sql_as_it_was_in_python(snapshots, no_cache, monkeypatch):
    """Above the cap: the first patients by the SHA-256 of their id (DuckDB's sha256 is the same hex
    as Python's hashlib), chosen before any point is loaded; the same rows as the old sample."""
    snapshot = snapshots["synthetic"]
    evaluable = data.execute("select distinct patient_id from spider_points where scope = 'overall'",
                             snapshot)["patient_id"].tolist()
    for cap in (1, 7, len(evaluable) // 2, len(evaluable) - 1, len(evaluable), len(evaluable) + 3):
        monkeypatch.setattr(rx, "SPIDER_MAX_PATIENTS", cap)
        new = rx.spider_export(snapshot, response_scope="overall")
        assert_same(new, old_export("spider", snapshot, Filters(), "overall"))
        drawn = sorted(evaluable, key=lambda p: hashlib.sha256(p.encode()).hexdigest())[:cap]
        assert sorted(new.rows["patient_id"].unique()) == sorted(drawn)
        assert new.extra["n_patients_evaluable"] == len(evaluable)


# --- swimmer: the page's lanes only ------------------------------------------------------------------
@pytest.mark.parametrize("registry, i", CASES)
def test_swimmer_pages_are_the_export_sliced_to_the_page(snapshots, no_cache, registry, i):
    snapshot, filters = snapshots[registry], FILTERS[registry][i]
    for scope in SCOPES:
        full = rx.swimmer_export(snapshot, filters, data.ALL_SITES, response_scope=scope).rows
        for sort in resp.SWIMMER_SORTS:
            order = rx.swimmer_lanes(snapshot, filters, data.ALL_SITES, scope, sort)
            assert order == old_swimmer_order(full, sort) == resp.swimmer_order(full, sort)
            size = 3 if registry != "synthetic" else 50
            pages = resp.n_pages(len(order), size)
            for page in sorted({1, 2, pages}):
                lanes = resp.page_slice(order, page, size)
                got = rx.swimmer_page_rows(snapshot, filters, data.ALL_SITES, scope, lanes)
                expected = full[full["patient_id"].isin(lanes)].reset_index(drop=True)
                pd.testing.assert_frame_equal(got, expected, check_exact=True)
                assert set(got["patient_id"]) == set(lanes)
                if sort == "time_desc":                 # the export's own lane order
                    assert list(dict.fromkeys(got["patient_id"])) == lanes


def test_swimmer_card_never_loads_the_swimmer_export(snapshots, no_cache, monkeypatch):
    from dashboard.callbacks import response as cb

    def refuse(*_, **__):
        raise AssertionError("the swimmer card must not load every lane's marks")

    monkeypatch.setitem(exports.EXPORTS, "swimmer", exports.ExportSpec("swimmer", refuse, "refused"))
    monkeypatch.setenv("REGISTRY_DATA", str(snapshots["synthetic"].path.parent.parent))
    state = {"snapshot": snapshots["synthetic"].snapshot_id, "query": "bclc=B,C"}
    fig, _, spec, _, pages, page, count = cb.swimmer_card(state, "overall", "time_asc", 2, 25)
    lanes = list(fig.layout.yaxis.categoryarray)
    order = rx.swimmer_lanes(snapshots["synthetic"], Filters(bclc=("B", "C")), data.ALL_SITES, "overall", "time_asc")
    assert page == 2 and lanes == order[25:50] and count.startswith(f"Showing lanes 26–50 of {len(order)} patients")
    assert spec["export"] == "swimmer"                      # the CSV button still downloads every lane
    shown = {p for t in fig.data if t.type == "bar" for p in t.y}
    assert shown == set(lanes)
    # following a patient turns to the page holding the lane
    target = order[60]
    *_, page, count = cb.swimmer_card(state, "overall", "time_asc", 1, 25, target, follow_highlight=True)
    assert page == 3 and count.startswith("Showing lanes 51–75")


# --- consistency -------------------------------------------------------------------------------------
@pytest.mark.parametrize("registry, i", CASES)
def test_consistency_view_is_unchanged_and_patients_checked_count_its_patients(snapshots, registry, i):
    snapshot, filters = snapshots[registry], FILTERS[registry][i]
    for scope in SCOPES:
        new = scoped(snapshot, filters, "select * from response_consistency", scope, "patient_id, visit")
        old = scoped(snapshot, filters, OLD_CONSISTENCY_SQL, scope, "patient_id, visit")
        pd.testing.assert_frame_equal(new, old, check_exact=True)
        assert new["is_discrepant"].notna().all()
        checked = data.execute(rx.CHECKED_SQL, snapshot, filters, params=[scope])["n"].iloc[0]
        assert checked == new["patient_id"].nunique()


def consistency_rows(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "patient_id": [f"P{i:04d}" for i in range(n)], "site_id": "S01", "bclc_stage": "B", "visit": "M1",
        "imaging_date": pd.Timestamp("2024-05-01"), "recorded": "CR", "implied": "PR", "sum_mm": 10.0,
        "baseline_mm": 40.0, "nadir_before_mm": 40.0, "pct_change": -75.0, "pct_from_nadir": -75.0})


def body_rows(table) -> list:
    from dashboard.components import iter_components
    grid = next(c for c in iter_components(table) if getattr(c, "id", None) == "response-consistency-grid")
    return grid.children[1].children


def test_consistency_table_shows_the_first_rows_with_a_note():
    from dashboard.callbacks import response as cb
    from dashboard.components import iter_components
    cap = cb.CONSISTENCY_MAX_ROWS
    assert cap == 200
    table = cb.consistency_table(consistency_rows(9291))
    assert len(body_rows(table)) == cap
    assert body_rows(table)[0].children[0].children == "P0000" and body_rows(table)[-1].children[0].children == "P0199"
    note = next(c for c in iter_components(table) if getattr(c, "id", None) == "response-consistency-cap")
    assert note.children == "First 200 of 9,291 disagreeing scans shown (by patient, then scan date); the CSV has all."
    small = cb.consistency_table(consistency_rows(cap))
    assert len(body_rows(small)) == cap
    assert not any(getattr(c, "id", None) == "response-consistency-cap" for c in iter_components(small))


def test_consistency_card_caps_the_table_but_not_the_counts_or_the_csv(snapshots, monkeypatch):
    from dashboard.callbacks import downloads
    from dashboard.callbacks import response as cb
    from dashboard.components import iter_components
    snapshot = snapshots["synthetic"]
    monkeypatch.setenv("REGISTRY_DATA", str(snapshot.path.parent.parent))
    state = {"snapshot": snapshot.snapshot_id, "query": ""}
    exp = exports.run_export("response-consistency", snapshot, response_scope="overall")
    assert len(exp.rows) > 3, "the synthetic registry has disagreeing scans"
    monkeypatch.setattr(cb, "CONSISTENCY_MAX_ROWS", 3)
    table, spec, note = cb.consistency_card(state, "overall")
    assert [r.children[0].children for r in body_rows(table)] == list(exp.rows["patient_id"][:3])
    cap = next(c for c in iter_components(table) if getattr(c, "id", None) == "response-consistency-cap")
    assert cap.children.startswith(f"First 3 of {len(exp.rows):,} disagreeing scans shown")
    assert note[0].children.startswith(f"{exp.extra['n_patients_flagged']} of ")
    assert downloads.csv_download(spec, state)["content"] == exports.to_csv(exp)


# --- the waterfall figure ----------------------------------------------------------------------------
def test_waterfall_figure_is_unicode_arrays_with_exact_numbers(snapshots):
    from plotly.io.json import to_json_plotly
    rows = exports.run_export("waterfall", snapshots["synthetic"], response_scope="overall").rows
    highlight = rows["patient_id"].iloc[len(rows) // 2]
    fig = figs.waterfall_figure(rows, highlight=highlight)
    bars = [t for t in fig.data if t.type == "bar"]
    assert sum(len(t.x) for t in bars) == len(rows)
    assert fig.layout.xaxis.categoryarray.dtype.kind == "U"
    assert list(fig.layout.xaxis.categoryarray) == list(rows["patient_id"])
    by_id = rows.set_index("patient_id")
    for t in bars:
        assert t.x.dtype.kind == "U" and t.customdata.dtype.kind == "U" and t.y.dtype.kind == "f"
        bor = t.name.split(" ")[0]
        assert "best response " + bor in t.hovertemplate and "%{customdata[3]:+.1f}" in t.hovertemplate
        assert t.hovertemplate.startswith("<b>%{x}</b>")          # the patient: the bar's category
        expected = by_id.loc[list(t.x)]
        # the best change printed in the hover reads back as the export's float, exactly
        assert [float(v) for v in t.customdata[:, 3]] == list(expected["best_pct_change"])
        assert list(t.customdata[:, 0]) == list(expected["site_id"])
        assert list(t.customdata[:, 1]) == list(expected["bclc_stage"])
        assert list(t.customdata[:, 2]) == list(expected["best_visit"].fillna(""))
        assert set(expected["bor"]) == {bor}
        assert list(t.y) == list(expected["best_pct_change"].clip(upper=figs.CAP))
        width = t.marker.line.width
        if highlight in set(t.x):
            assert list(np.asarray(t.x)[np.asarray(width) == 3]) == [highlight]
        else:
            assert width == 0
    sent = json.loads(to_json_plotly(fig.to_plotly_json()))
    assert all(isinstance(v, str) for t in sent["data"] if t["type"] == "bar" for v in t["customdata"][0])
    capped = next((t for t in fig.data if t.type == "scatter"), None)
    if capped is not None:
        assert [float(v) for v in capped.customdata[:, 1]] == list(by_id.loc[list(capped.x), "best_pct_change"])


def test_a_click_on_a_waterfall_bar_follows_its_patient():
    """The waterfall's bars carry the patient as x (customdata holds site, stage, visit, change)."""
    from dashboard.callbacks import response as cb
    bar = {"points": [{"x": "S03-00017", "y": -12.5, "customdata": ["S03", "B", "M3", "-12.5"]}]}
    assert cb.highlighted({"type": "figure", "figure": cb.WATERFALL}, None, bar) == "S03-00017"
    triangle = {"points": [{"x": "S01-00002", "y": 100, "customdata": ["S01-00002", "150.0"]}]}
    assert cb.highlighted({"type": "figure", "figure": cb.WATERFALL}, "P1", triangle) == "S01-00002"
    assert cb.highlighted({"type": "figure", "figure": cb.WATERFALL}, "P1", {"points": []}) == "P1"


@pytest.mark.parametrize("engine", ["orjson", "repr"])
def test_numbers_sent_as_text_read_back_exactly(monkeypatch, engine):
    if engine == "repr":
        monkeypatch.setattr(figs, "orjson", None)
    rng = np.random.default_rng(7)
    values = np.concatenate([100 * (rng.integers(1, 400, 5000) - 200) / rng.integers(1, 300, 5000),
                             [-100.0, 0.0, 150.0, 1e-7, -12.25, 1e20, 33.333333333333336]])
    text = figs._number_text(values)
    assert text.dtype.kind == "U" and [float(t) for t in text] == list(values)
    if engine == "repr":
        assert list(text[:50]) == [repr(v) for v in values[:50].tolist()]
    assert list(figs._number_text(np.array([1.5, np.nan]))) == ["1.5", ""]
