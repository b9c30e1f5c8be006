"""Enrollment page: exports, Table 1 and follow-up analytics, figure builders and callbacks as
plain functions, on the hand-written mini registry (answers worked out by hand)."""
import numpy as np
import pandas as pd
import flask
import pytest

from dashboard import data
from dashboard.analytics.baseline import baseline_table, baseline_wide, followup_status
from dashboard.callbacks import enrollment as cb
from dashboard.callbacks import shell
from dashboard.exports import run_export, to_csv
from dashboard.figures import enrollment as figs
from dashboard.filters import Filters


@pytest.fixture(autouse=True)
def mini_data_root(mini_root, monkeypatch):
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))


STATE = {"snapshot": "2024-12-31", "query": ""}


def test_accrual_export_pools_sites_and_sums_targets(mini_snapshot):
    rows = run_export("accrual", mini_snapshot).rows
    pooled = rows[rows.site_id == "all"].set_index("month")
    # P1 Jan, P2 Feb, P3 Mar, P4 May, P5 Jun 2024 -> cumulative 1,2,3,3,4,5 from Jan to Jun
    assert list(pooled.cum_enrolled.iloc[:6]) == [1, 2, 3, 3, 4, 5]
    assert set(pooled.target_enrollment) == {15}                 # 10 + 5
    s02 = run_export("accrual", mini_snapshot, Filters(site=("S02",))).rows
    assert set(s02.site_id) == {"all", "S02"} and s02.cum_enrolled.max() == 2


def test_table_one_counts_and_medians_by_hand():
    cohort = pd.DataFrame({
        "age_years": [50, 60, 70, 80], "sex": ["M", "M", "F", "M"],
        "etiology": ["HBV", None, "HCV", "HBV"], "ecog_ps": [0, 0, 1, 2],
        "child_pugh_class": ["A", "A", "B", "A"], "albi_grade": [1, 2, None, 1],
        "afp_ng_ml": [10.0, 500.0, None, 20.0], "tumor_count": [1, 3, 4, 8],
        "largest_tumor_cm": [2.0, 5.0, 8.0, 12.0], "has_macrovascular_invasion": [False, False, True, False],
        "has_extrahepatic_spread": [False] * 4, "is_within_milan": [True, False, False, False],
        "is_within_up_to_seven": [True, True, False, False], "bclc_stage": ["A", "B", "C", "C"],
    })
    t = baseline_table(cohort).set_index(["group", "variable", "level"])
    # age 50,60,70,80: median 65, quartiles 57.5 and 72.5 (R quantile type 7)
    assert t.loc[("Overall", "age_years", "median (IQR)"), "text"] == "65.0 (57.5-72.5)"
    assert t.loc[("Overall", "sex", "Male"), "text"] == "3 (75.0%)"
    # the missing etiology is counted, not dropped
    assert t.loc[("Overall", "etiology", "missing"), "n"] == 1
    # AFP: 500 > 400 in one of four; one missing
    assert t.loc[("Overall", "afp_over_400", "yes"), "n"] == 1
    assert t.loc[("Overall", "afp_over_400", "missing"), "n"] == 1
    assert t.loc[("Overall", "tumor_count_group", "> 5"), "n"] == 1
    # by BCLC stage: the C column has two patients
    assert t.loc[("BCLC C", "n", ""), "n"] == 2
    wide = baseline_wide(baseline_table(cohort))
    assert list(wide.columns) == ["variable", "label", "level", "Overall", "BCLC A", "BCLC B", "BCLC C"]


def test_followup_status_on_mini_registry(mini_snapshot):
    status = followup_status(data.query("cohort", mini_snapshot)).set_index("status")
    # P1 and P4 died; P3 lost to follow-up; P2 and P5 alive on study
    assert status.loc["died", "n"] == 2
    assert status.loc["off study: lost to follow-up", "n"] == 1
    assert status.loc["alive on study", "n"] == 2
    assert status.n.sum() == 5


def test_followup_export_median_by_reverse_km(mini_snapshot):
    # reverse KM: censoring is the event. OS times 31 (died), 182 (died), 213, 214, 334 (alive).
    # At 213: 3 at risk, 1 "event" -> 2/3; at 214: 2 at risk -> 1/3 <= 0.5: median 214 days.
    exp = run_export("followup-status", mini_snapshot)
    assert exp.extra["median_followup_days"] == 214


def test_accrual_figure_pooled_and_per_site(mini_snapshot):
    rows = run_export("accrual", mini_snapshot).rows
    pooled = figs.accrual_figure(rows)
    assert [t.name for t in pooled.data] == ["Enrolled (cumulative)", "Target (sum of sites)"]
    assert list(pooled.data[0].y)[-1] == 5
    per_site = figs.accrual_figure(rows, per_site=True)
    assert {t.name for t in per_site.data if t.showlegend is not False} == {"S01", "S02"}


def test_figures_say_so_when_no_patient():
    empty = pd.DataFrame(columns=["site_id", "site_name", "month", "n_enrolled", "cum_enrolled", "target_enrollment"])
    fig = figs.accrual_figure(empty)
    assert "No patients" in fig.layout.annotations[0].text
    assert "No patients" in figs.followup_figure(pd.DataFrame(columns=["status", "n", "pct"])).layout.annotations[0].text


def test_enrollment_bars_sort(mini_snapshot):
    rows = run_export("enrollment", mini_snapshot).rows
    by_pct = figs.enrollment_bars(rows, "pct_target")
    # S02 2/5 = 40% > S01 3/10 = 30%
    assert list(by_pct.data[1].y)[0].startswith("S02")
    by_site = figs.enrollment_bars(rows, "site")
    assert list(by_site.data[1].y)[0].startswith("S01")


def test_callbacks_as_plain_functions_give_the_export_rows(mini_snapshot):
    fig, config, spec, note = cb.accrual_card({"snapshot": "2024-12-31", "query": "site=S01"}, "pooled")
    assert spec["export"] == "accrual" and spec["filename"].startswith("enrollment_accrual_2024-12-31_")
    assert "toImage" in config["modeBarButtonsToRemove"]       # the card's PNG/SVG buttons name the file
    assert list(fig.data[0].y)[-1] == 3
    from dashboard.callbacks.downloads import csv_download
    payload = csv_download(spec["figure"], "", {"snapshot": "2024-12-31", "query": "site=S01"})
    expected = to_csv(run_export("accrual", mini_snapshot, Filters(site=("S01",))))
    assert payload["content"] == expected and payload["filename"].endswith(".csv")


def test_baseline_card_empty_filter_shows_message():
    table, spec, note = cb.baseline_card({"snapshot": "2024-12-31", "query": "bclc=0"})
    assert "No patients" in str(table)


def test_shell_parses_bad_links_politely_and_builds_canonical_urls():
    snapshot, filters, messages = shell.parse_search("?bclc=Z&sex=F&snapshot=1999-01-01")
    assert filters == Filters(sex=("F",))
    assert any("1999-01-01" in m for m in messages) and any("bclc" in m for m in messages)
    assert shell.build_search("2024-12-31", Filters(bclc=("B",)), "?endpoint=pfs&bclc=C", "2024-12-31") == \
        "?bclc=B&endpoint=pfs"


def test_banner_counts_n_of_N_and_makes_chips():
    count, cutoff, chips, empty = shell.banner_parts({"snapshot": "2024-12-31", "query": "bclc=C&sex=F"})
    assert "1" in str(count[0]) and "of 5 patients" in count[1]      # only P2 is C and female
    assert "2024-12-31" in cutoff and not empty and len(chips) == 2


def test_state_context_resolves_once_per_request_and_again_in_the_next(tmp_path, monkeypatch, dash_app):
    """Within one request the snapshot is resolved once (a callback asks two to four times); the
    next request resolves again, so a cut published in between is seen at once."""
    from fixtures import mini_registry, write_snapshot
    write_snapshot(tmp_path, "2024-12-31", mini_registry())
    monkeypatch.setenv("REGISTRY_DATA", str(tmp_path))
    calls = []
    resolve = data.resolve
    monkeypatch.setattr(data, "resolve", lambda *a, **k: calls.append(a) or resolve(*a, **k))
    latest = {"snapshot": "latest", "query": "bclc=C"}
    from dashboard import state as request_state
    from dashboard.access import User
    committee = User("chair", "committee")
    with dash_app.server.test_request_context("/"):
        flask.g.user = committee
        first = request_state.state_context(latest)
        assert request_state.state_context(latest) is first and len(calls) == 1
        other = request_state.state_context({"snapshot": "latest", "query": "sex=F"})     # other filters: resolved
        assert len(calls) == 2 and other[1] != first[1] and other[0] == first[0]
    write_snapshot(tmp_path, "2025-03-31", mini_registry())
    with dash_app.server.test_request_context("/"):
        flask.g.user = committee
        assert request_state.state_context(latest)[0].snapshot_id == "2025-03-31"
    assert request_state.state_context(latest)[0].snapshot_id == "2025-03-31"      # outside a request: no memo
    assert len(calls) == 4


def test_router_passes_page_options_from_the_url(dash_app):
    layout, title = shell.render_page("/enrollment", "?mode=site&sort=enrolled&bclc=B")
    assert "Enrollment" in title
    text = str(layout)
    assert "'value': 'site'" in text or "value='site'" in text
    missing, title = shell.render_page("/nope", "")
    assert title == "Not found"


def test_a_broken_newer_cut_is_rejected_and_the_last_good_one_served(tmp_path, monkeypatch):
    """The contract: a snapshot that breaks a rule is rejected with table, column and rule, and
    the dashboard keeps serving the last one that passed."""
    from fixtures import mini_registry, write_snapshot
    from dashboard.callbacks import overview
    good = mini_registry()
    write_snapshot(tmp_path, "2024-12-31", good)
    broken = mini_registry()
    broken["patients"][0]["sex"] = "X"
    write_snapshot(tmp_path, "2025-03-31", broken)
    monkeypatch.setenv("REGISTRY_DATA", str(tmp_path))
    assert data.resolve("latest").snapshot_id == "2024-12-31"
    panel = str(overview.quality_panel({"snapshot": "2024-12-31", "query": ""}))
    assert "2025-03-31" in panel and "patients.sex" in panel


def test_choosing_a_rejected_cut_says_so_and_keeps_the_last_good_one(tmp_path, monkeypatch):
    from fixtures import mini_registry, write_snapshot
    from dashboard import ids
    write_snapshot(tmp_path, "2024-12-31", mini_registry())
    broken = mini_registry()
    broken["imaging"][1]["overall_response"] = "XX"
    write_snapshot(tmp_path, "2025-03-31", broken)
    monkeypatch.setenv("REGISTRY_DATA", str(tmp_path))
    values = {k: [] for k in shell.CONTROL_KEYS}
    out = shell.sync_state(ids.SNAPSHOT, "", "2025-03-31", values, [18, 100], None, None)
    assert out[1]["snapshot"] == "2024-12-31"
    assert "rejected" in str(out[2]) and "imaging.overall_response" in str(out[2])
    labels = {o["value"]: o for o in out[3]}
    assert labels["2025-03-31"]["disabled"] is True


def test_page_option_spec_gives_the_defaults_and_the_choices(dash_app):
    """What the browser sets the page options from on back and forward (assets/shell.js; its
    behaviour: tests/test_shell_clientside.py): the layout's values and the controls' choices."""
    spec = shell.page_option_spec("/enrollment")
    assert spec["defaults"] == {"mode": "pooled", "sort": "site"}
    assert set(spec["allowed"]) == {"mode", "sort"} and "site" in spec["allowed"]["mode"]
    assert shell.page_option_spec("/no-such-page") == {"defaults": {}, "allowed": {}}


def test_accrual_pooled_rows_are_the_sums_over_sites(synthetic_root):
    """The accrual export's pooled rows (site 'all') equal a pandas groupby over the per-site rows,
    as the export computed them before (same values and order; the counts keep the view's integer type)."""
    from dashboard import data, exports
    from dashboard.filters import Filters
    snap = data.resolve("latest", synthetic_root)
    for filters in (Filters(), Filters.parse_pairs([("site", "S01,S03"), ("bclc", "B")])[0]):
        exp = exports.EXPORTS["accrual"].func(snap, filters)
        per_site = data.query("accrual_monthly", snap, filters, order_by=("site_id", "month"))
        # the whole sites' cumulative accrual (no filter but the site selection), as the export adds it
        totals = data.query("accrual_monthly", snap, Filters(site=filters.site), order_by=("site_id", "month"))
        per_site = per_site.assign(cumulative_total=totals["cum_enrolled"])
        pooled = (per_site.groupby("month", as_index=False)
                  .agg(n_enrolled=("n_enrolled", "sum"), cum_enrolled=("cum_enrolled", "sum"),
                       target_enrollment=("target_enrollment", "sum"), cumulative_total=("cumulative_total", "sum"))
                  .assign(site_id="all", site_name="All sites"))
        expected = pd.concat([pooled, per_site], ignore_index=True)[
            ["site_id", "site_name", "month", "n_enrolled", "cum_enrolled", "target_enrollment", "cumulative_total"]]
        assert (exp.rows["site_id"] == "all").sum() == len(pooled) > 12
        pd.testing.assert_frame_equal(exp.rows, expected, check_dtype=False)
        assert list(exp.rows.dtypes.astype(str)[3:]) == list(per_site.dtypes.astype(str)[3:])
