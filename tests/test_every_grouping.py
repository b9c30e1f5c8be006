"""Every export that takes a grouping (`--by`) runs for every grouping the pages offer
(dashboard/grouping.py GROUPINGS), on the synthetic registry, and its groups are the field's own
levels counted with pandas from the cohort. A grouping added for one page (the forest plot's
age >= 65 and up-to-seven) once broke the Safety heatmaps: a view without the new column."""
import pytest

from dashboard import data, exports
from dashboard.data import ALL_SITES
from dashboard.exports import EXPORTS
from dashboard.filters import Filters
from dashboard.grouping import GROUPINGS

exports._load_all()
BY_EXPORTS = sorted(name for name, spec in EXPORTS.items() if "by" in spec.options)


@pytest.mark.parametrize("by", [k for k in GROUPINGS if k != "none"])
def test_every_export_with_a_grouping_runs_for_every_grouping(synthetic_root, by):
    snapshot = data.resolve("latest", synthetic_root)
    cohort = data.query("cohort", snapshot)
    levels = set(cohort[by].astype("string").fillna("unknown"))
    assert BY_EXPORTS and "ae-incidence" in BY_EXPORTS and "km-summary" in BY_EXPORTS
    runs = [(name, {"by": by}) for name in BY_EXPORTS if name != "forest"]    # forest: tests/test_forest.py
    # the Safety counts take another query when an episode option is set (ae_episodes)
    runs += [("ae-incidence", {"by": by, "related_only": True}), ("ae-incidence", {"by": by, "within_days": 30})]
    for name, options in runs:
        exp = exports.compute_export(name, snapshot, Filters(), ALL_SITES, **options)
        if "group" in exp.rows.columns and len(exp.rows):
            got = set(exp.rows["group"].dropna().astype(str)) - {"All patients", "all"}
            assert got <= levels, (name, options, got - levels)
