"""The waterfall's colour follows the measurements (issue 19, item 5): each bar's implied response and whether
its recorded BOR contradicts it, from the `waterfall` export, against an independent pandas computation over the
snapshot's parquet files (the analysis plan's thresholds on the best % change: CR = every target at 0 mm, i.e.
-100%; PR <= -30%; PD >= +20%; else SD), on the hand-written mini registry and on the synthetic registry; and
what the issue's "65 scans" is at the level of the bars (the response-consistency export lists disagreeing scans;
a bar is one patient's best scan against their BOR)."""
import json

import numpy as np
import pandas as pd

from dashboard import data, exports
from dashboard.filters import Filters

RANK = {"CR": 1, "PR": 2, "SD": 3, "PD": 4}


def pandas_bars(path, cutoff) -> pd.DataFrame:
    """Per evaluable patient (overall scope), from the parquet files with pandas only: best % change in the sum of
    viable target diameters over post-baseline scans up to and including the first recorded PD, its visit, the
    BOR over the same scans, the implied response by the plan's thresholds and the contradiction flag (BOR differs
    from the implied response, except a recorded NE, a PD with a new lesion (or none recorded) or an unequivocally
    progressing non-target lesion at that scan, a PR at 0 mm with a non-target lesion present at that scan)."""
    read = lambda t: pd.read_parquet(path / f"{t}.parquet")             # noqa: E731
    patients, lesions, meas, imaging = read("patients"), read("lesions"), read("lesion_measurements"), read("imaging")
    patients = patients[pd.to_datetime(patients["first_treatment_date"]) <= pd.Timestamp(cutoff)]
    imaging = imaging[imaging["patient_id"].isin(patients["patient_id"])].copy()
    imaging["imaging_date"] = pd.to_datetime(imaging["imaging_date"])
    targets = lesions[lesions["is_target"]]
    n_targets = targets.groupby("patient_id").size()
    measured = meas.merge(targets[["patient_id", "lesion_id"]]).dropna(subset=["viable_diameter_mm"])
    sums = measured.groupby(["patient_id", "visit"])["viable_diameter_mm"].agg(["sum", "count"]).reset_index()
    sums = sums[sums["count"] == sums["patient_id"].map(n_targets)]          # every target measured
    scans = imaging.merge(sums[["patient_id", "visit", "sum"]], how="left")
    baseline = scans[scans["visit"] == "baseline"].set_index("patient_id")["sum"]
    follow = scans[scans["visit"] != "baseline"].copy()
    first_pd = follow[follow["overall_response"] == "PD"].groupby("patient_id")["imaging_date"].min()
    follow = follow[follow["imaging_date"] <= follow["patient_id"].map(first_pd).fillna(pd.Timestamp.max)]
    nt = meas.merge(lesions[~lesions["is_target"]][["patient_id", "lesion_id"]])
    rows = []
    for pid, g in follow.groupby("patient_id"):
        b = baseline.get(pid)
        g = g.assign(pct=100.0 * (g["sum"] - b) / b if b is not None and b == b and b > 0 else np.nan)
        g = g.dropna(subset=["pct"])
        if g.empty:
            continue
        best = g.sort_values(["pct", "imaging_date"]).iloc[0]
        recorded = [r for r in follow.loc[follow["patient_id"] == pid, "overall_response"] if r in RANK]
        bor = min(recorded, key=RANK.get) if recorded else "NE"
        pct = best["pct"]
        implied = "CR" if pct <= -100 else "PR" if pct <= -30 else "PD" if pct >= 20 else "SD"
        at = nt[(nt["patient_id"] == pid) & (nt["visit"] == best["visit"])]["non_target_status"]
        new = best["has_new_lesion"]
        explained = (bor == "PD" and (new is None or new != new or bool(new)
                                      or (at == "unequivocal_progression").any())) or \
                    (bor == "PR" and implied == "CR" and (at != "absent").any())
        rows.append({"patient_id": pid, "best_pct_change": pct, "best_visit": best["visit"], "bor": bor,
                     "implied_response": implied, "contradicts": bor != "NE" and bor != implied and not explained})
    return pd.DataFrame(rows).set_index("patient_id").sort_index()


def _export(snapshot):
    exp = exports.run_export("waterfall", snapshot, Filters(), response_scope="overall")
    return exp, exp.rows.set_index("patient_id").sort_index()


def _check(snapshot):
    exp, got = _export(snapshot)
    want = pandas_bars(snapshot.path, snapshot.cutoff_date)
    assert list(got.index) == list(want.index)
    assert np.allclose(got["best_pct_change"].to_numpy(float), want["best_pct_change"].to_numpy(float))
    for column in ("best_visit", "bor", "implied_response"):
        assert got[column].tolist() == want[column].tolist(), column
    assert got["recorded_response"].tolist() == got["bor"].tolist()
    assert got["contradicts"].tolist() == want["contradicts"].tolist()
    assert exp.extra["n_contradicts"] == int(want["contradicts"].sum())
    return exp, got


def test_mini_registry_implied_response_equals_pandas_over_the_parquet_files(mini_snapshot):
    exp, got = _check(mini_snapshot)
    assert len(got) > 0


def test_synthetic_registry_implied_response_and_contradictions_equal_pandas(synthetic_root):
    snapshot = data.resolve("latest", synthetic_root)
    exp, got = _check(snapshot)
    # the example: no bar coloured SD at -60% (an SD bar lies strictly between -30% and +20%)
    sd = got[got["implied_response"] == "SD"]["best_pct_change"]
    assert ((sd > -30) & (sd < 20)).all()
    assert (got[got["implied_response"] == "PR"]["best_pct_change"] <= -30).all()
    # the recorded SD bars below -30% that the issue saw are now PR bars marked as contradicting
    recorded_sd_low = got[(got["bor"] == "SD") & (got["best_pct_change"] <= -30)]
    assert len(recorded_sd_low) > 0 and recorded_sd_low["contradicts"].all()
    # "65 scans": the response-consistency export's disagreeing scans (every post-baseline scan checked); the
    # waterfall marks bars, one per patient, where the BOR contradicts the best scan's implied response: fewer
    consistency = exports.run_export("response-consistency", snapshot, Filters(), response_scope="overall")
    assert len(consistency.rows) == 65 and consistency.extra["n_patients_flagged"] == 58
    assert int(got["contradicts"].sum()) == 18
    # every marked bar's patient is among the patients with a disagreeing scan
    assert set(got.index[got["contradicts"]]) <= set(consistency.rows["patient_id"])


def test_the_export_carries_the_new_columns_after_the_old_ones(synthetic_root):
    snapshot = data.resolve("latest", synthetic_root)
    exp, _ = _export(snapshot)
    assert list(exp.rows.columns) == ["patient_id", "site_id", "bclc_stage", "best_pct_change", "best_visit", "bor",
                                      "implied_response", "recorded_response", "contradicts"]
    sent = json.loads(exports.to_json(exp, snapshot, Filters()))
    assert sent["rows"][0]["contradicts"] in (True, False)
