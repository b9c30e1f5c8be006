"""Export lifelines' copy of the NCCTG lung-cancer data to tests/reference/lung.csv.

The CSV is the input of make_reference.R, so R and the Python tests see exactly
the same rows.

Columns are written exactly as ``lifelines.datasets.load_lung()`` returns them
(same names, same order, same row order, no index column):

    inst, time, status, age, sex, ph.ecog, ph.karno, pat.karno, meal.cal, wt.loss

Status coding: lifelines' copy uses ``status`` 1 = dead (event), 0 = censored
(165 events, 63 censored among 228 patients).  This differs from R's
``survival::lung``, where status is 1 = censored, 2 = dead.  The script asserts
the lifelines coding so that a change upstream is noticed.

``sex`` is 1 = male (138), 2 = female (90).  Missing values are written as empty
fields (read back as NA by R's read.csv and NaN by pandas).

Run from the repo root:  python tests/reference/export_lung.py
"""
from pathlib import Path

from lifelines.datasets import load_lung

HERE = Path(__file__).resolve().parent
OUT = HERE / "lung.csv"


def main() -> None:
    df = load_lung()

    # Document / guard the coding the reference numbers depend on.
    assert df.shape == (228, 10), df.shape
    assert set(df["status"].unique()) == {0, 1}, "expected status 1 = dead, 0 = censored"
    assert int((df["status"] == 1).sum()) == 165, "expected 165 deaths"
    assert int((df["status"] == 0).sum()) == 63, "expected 63 censored"
    assert set(df["sex"].unique()) == {1, 2}
    assert int((df["sex"] == 1).sum()) == 138 and int((df["sex"] == 2).sum()) == 90

    df.to_csv(OUT, index=False, na_rep="")
    print(f"wrote {OUT} ({len(df)} rows, columns: {', '.join(df.columns)})")


if __name__ == "__main__":
    main()
