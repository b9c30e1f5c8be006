"""The ae-incidence export on option combinations the Safety page tests leave out, hand-counted: the
safety registry of tests/test_safety_page.py plus P7 (two Fever episodes of different kinds and a
non-related serious one) and P8 (a patient at a site of his own with no DEB-TACE session recorded,
a validator warning, still in the denominator). These cases were guarded only by
tests/test_safety_fast.py (retired), which compared the export with a frozen copy of its earlier self.

Counting rules (analysis plan, Safety): each patient once per term at the worst grade of the
counted episodes; "related only" and "serious only" together count the episodes that are both.
"""
import pytest

from fixtures import D, ae, patient, session, write_snapshot
from test_safety_page import GEN, HEP, counts, row, safety_registry

from dashboard import data, exports
from dashboard.filters import Filters


def registry():
    rows = safety_registry()
    rows["sites"].append(dict(site_id="S03", site_name="East Hospital", activation_date=D("2024-01-01"),
                              target_enrollment=5))
    rows["patients"] += [patient("P7", "S01", "2024-07-01", "B", last_alive="2024-12-31"),
                         patient("P8", "S03", "2024-07-01", "B", last_alive="2024-12-31")]
    rows["treatments"].append(session("P7", 1, "2024-07-01"))
    rows["adverse_events"] += [
        ae("P7", "A1", "Fever", 4, "2024-07-02"),                                  # related, not serious
        ae("P7", "A2", "Fever", 2, "2024-07-03", serious=True),                    # related and serious
        ae("P7", "A3", "Nausea", 3, "2024-07-04", serious=True, related=False),   # serious, not related
    ]
    return rows


@pytest.fixture(scope="module")
def snap(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety_hand")
    write_snapshot(root, "2024-12-31", registry())
    return data.resolve("latest", root)


def incidence(snap, **options):
    return exports.compute_export("ae-incidence", snap, Filters(), data.ALL_SITES, **options).rows


def test_related_and_serious_together_count_the_episodes_that_are_both(snap):
    """Related and serious episodes: P1 Fever G3, P2 Hepatic failure G4, P6 Hepatic failure G5,
    P7 Fever G2 (P7's G4 Fever is not serious, its Nausea not related; P3's Vomiting not related).
    Counts: (any, g1..g5, g3-4, g5, serious, related, denominator); N = 8 patients."""
    rows = incidence(snap, related_only=True, serious_only=True)
    assert counts(rows.iloc[0]) == (4, 0, 1, 1, 1, 1, 2, 1, 4, 4, 8)         # P7 2, P1 3, P2 4, P6 5
    assert counts(row(rows, GEN, "Fever")) == (2, 0, 1, 1, 0, 0, 1, 0, 2, 2, 8)   # P7 at 2, not 4
    assert counts(row(rows, HEP, "Hepatic failure")) == (2, 0, 0, 0, 1, 1, 1, 1, 2, 2, 8)
    assert set(rows.term.dropna()) == {"Fever", "Hepatic failure"}
    # 4 counted episodes over 9 sessions (P1 2, P2 1, P3 2, P4 1, P5 1, P6 1, P7 1, P8 0)
    assert rows.iloc[0].n_events == 4 and rows.iloc[0].n_sessions == 9
    assert rows.iloc[0].events_per_100_sessions == pytest.approx(400 / 9)


def test_each_option_alone_on_p7(snap):
    """Related only: P7's Fever worst is 4 (G4 and G2 both related); serious only: P7's Fever
    worst is 2 and its Nausea 3 counts."""
    related = incidence(snap, related_only=True)
    assert row(related, GEN, "Fever")["grade_4"] == 1              # P7
    serious = incidence(snap, serious_only=True)
    assert row(serious, GEN, "Fever")["grade_2"] == 1 and row(serious, GEN, "Fever")["grade_4"] == 0
    assert counts(row(serious, "Gastrointestinal disorders", "Nausea")) == (1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 8)


def test_a_group_without_sessions_has_zero_sessions(snap):
    """By site: S03 holds P8 alone, no session and no AE: denominator 1, 0 sessions, no rate;
    S01: P1 P2 P5 P7, sessions 2 + 1 + 1 + 1 = 5."""
    rows = incidence(snap, by="site_id")
    overall = rows[rows.term.isna() & (rows.soc == rows.iloc[0].soc)].set_index("group")
    assert overall.loc["S03", "denominator"] == 1 and overall.loc["S03", "n_sessions"] == 0
    assert overall.loc["S03", "n_patients_any"] == 0
    assert overall.loc["S01", "denominator"] == 4 and overall.loc["S01", "n_sessions"] == 5
