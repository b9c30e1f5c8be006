"""Who sees what of the subgroup forest plot (`export forest`, the Survival page's forest card reads it).

The registry: generate_registry(n_patients=240, n_sites=6, seed=3), as tests/test_access_survival.py,
whose subgroups have arms of 1-4, 5-9 and 10+ patients; each test checks that its cases really occur in
the committee's numbers before asserting. Expected values: the export with no scope (the committee's
numbers, `python -m dashboard export forest`), itself checked against R in tests/test_forest.py. Rules
(dashboard/exports/forest.py, module docstring): counts 1-4 are "<5"; no hazard ratio where an arm
has fewer than 10 patients; p_interaction only with two or more hazard ratios shown in the field; one
more count withheld where a "<5" would be the arm's total minus the other levels.
"""
from __future__ import annotations

import pytest

from dashboard import access, data, exports
from dashboard.access import MIN_GROUP, SUPPRESSED
from dashboard.auth.users import User
from dashboard.filters import Filters
from dashboard.generate import generate_registry

SMALL = {1, 2, 3, 4}
SPONSOR = access.scope_for(User("sp", "sponsor", ()), ())
INVESTIGATOR = User("inv", "investigator", ("S01",))
COUNTS = ("n", "events", "ref_n", "ref_events")
OPTIONS = {"default": {}, "by etiology": {"by": "etiology_group", "ref": "HBV", "compare": "HCV"},
           "single-arm": {"form": "single-arm"}}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("access-forest")
    generate_registry(root, n_patients=240, n_sites=6, seed=3, last_cut_only=True, progress=False)
    return data.resolve("latest", root)


def pair(snapshot, options, filters=Filters(), scope=SPONSOR):
    """(committee's export, the scope's export), same options."""
    return (exports.compute_export("forest", snapshot, filters, **options),
            exports.compute_export("forest", snapshot, filters, scope, **options))


@pytest.mark.parametrize("name", list(OPTIONS))
def test_sponsor_never_sees_a_count_of_1_to_4(snapshot, name):
    full, shown = pair(snapshot, OPTIONS[name])
    cols = [c for c in COUNTS if c in full.rows.columns]
    assert any(v in SMALL for c in cols for v in full.rows[c]), "the scenario has no small count"
    assert len(shown.rows) == len(full.rows)
    for c in cols:
        for want, got in zip(full.rows[c], shown.rows[c]):
            assert got in (SUPPRESSED, None) if want in SMALL else got in (want, None), (c, want, got)
            assert got not in SMALL
    for value in (shown.extra.get("arm_n") or {}).values():
        assert value not in SMALL


@pytest.mark.parametrize("name", ["default", "by etiology"])
def test_sponsor_gets_no_hazard_ratio_for_an_arm_under_10(snapshot, name):
    full, shown = pair(snapshot, OPTIONS[name])
    small = (full.rows["n"] < MIN_GROUP) | (full.rows["ref_n"] < MIN_GROUP)
    assert small.any() and (~small & full.rows["hazard_ratio"].notna()).any(), "scenario"
    assert (shown.rows["small"] == full.rows["small"]).all() and (full.rows["small"] == small).all()
    for (i, s), want, got in zip(small.items(), full.rows.to_dict("records"), shown.rows.to_dict("records")):
        for c in ("hazard_ratio", "ci_lower", "ci_upper"):
            if s:
                assert got[c] is None, (want["subgroup_field"], want["subgroup_level"], c)
            else:
                assert got[c] == want[c] or (got[c] != got[c] and want[c] != want[c])
    for field, rows in shown.rows.groupby("subgroup_field"):
        n_hr = rows["hazard_ratio"].map(lambda v: v is not None and v == v).sum()
        if n_hr < 2:
            assert rows["p_interaction"].isna().all(), field
        else:
            assert (rows["p_interaction"] == full.rows.loc[rows.index, "p_interaction"]).all(), field
    assert "fewer than 10" in shown.extra["note"]


@pytest.mark.parametrize("name", list(OPTIONS))
def test_no_small_count_recoverable_from_the_arm_total(snapshot, name):
    """Per field and count column: the arm's total (public on the Kaplan-Meier summary) minus the shown
    levels never pins a "<5": zero or at least two members of each sum are not shown."""
    full, shown = pair(snapshot, OPTIONS[name])
    for c in [c for c in COUNTS if c in shown.rows.columns]:
        for field, values in shown.rows.groupby("subgroup_field")[c]:
            unseen = sum(v is None or isinstance(v, str) for v in values)
            assert unseen != 1, (name, field, c, list(values))


def test_sponsor_single_arm_withholds_estimates_under_10(snapshot):
    full, shown = pair(snapshot, OPTIONS["single-arm"])
    under = full.rows["n"] < MIN_GROUP
    assert under.any() and (~under).any()
    for u, got, want in zip(under, shown.rows.to_dict("records"), full.rows.to_dict("records")):
        for c in ("surv_365", "median_days", "median_ci_upper_days"):
            if u:
                assert got[c] is None
            else:
                assert got[c] == want[c] or (got[c] is None and want[c] is None) or (got[c] != got[c])


def test_investigator_sees_the_sponsors_export_unless_only_own_sites(snapshot):
    """Investigator of S01: over every site, the sponsor's rows; with the filter site=S01, the committee's."""
    everyone = Filters()
    inv_all = exports.compute_export("forest", snapshot, everyone, access.scope_for(INVESTIGATOR, ()))
    _, sponsor = pair(snapshot, {})
    assert inv_all.rows.astype(object).equals(sponsor.rows.astype(object))
    own = Filters(site=("S01",))
    options = {"by": "sex", "ref": "M", "compare": "F", "subgroups": "afp_group,age_group"}
    inv_own = exports.compute_export("forest", snapshot, own, access.scope_for(INVESTIGATOR, ("S01",)), **options)
    committee = exports.compute_export("forest", snapshot, own, **options)
    assert inv_own.rows.equals(committee.rows)
    assert any(v in SMALL for c in COUNTS for v in committee.rows[c]), "own-site rows have small counts"
