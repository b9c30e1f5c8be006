"""Writes the columns make_adam_reference.R needs from the public ADaM test data as CSV (R here
has no parquet reader): for each source, <name>_adsl.csv and <name>_adtte.csv with the raw
values, dates as YYYY-MM-DD. Nothing of the importer is used. The CSVs are not committed.

Run: python tests/reference/export_adam_os.py OUTDIR   (then Rscript tests/reference/make_adam_reference.R OUTDIR)
"""
import sys
from pathlib import Path

import pandas as pd

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"
SOURCES = {
    "pharmaverse": ("pharmaverseadam/adsl.parquet", "pharmaverseadam/adtte_onco.parquet"),
    "random": ("random_cdisc_data/cadsl.parquet", "random_cdisc_data/cadtte.parquet"),
}
ADSL_COLUMNS = ["USUBJID", "TRTSDT", "TRTSDTM", "RANDDT", "LSTALVDT"]
ADTTE_COLUMNS = ["USUBJID", "PARAMCD", "STARTDT", "ADT", "ADTM", "CNSR"]


def as_date_text(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.strftime("%Y-%m-%d")


def export(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (adsl_file, adtte_file) in SOURCES.items():
        for kind, file, columns in (("adsl", adsl_file, ADSL_COLUMNS), ("adtte", adtte_file, ADTTE_COLUMNS)):
            frame = pd.read_parquet(TESTDATA / file)
            frame = frame[[c for c in columns if c in frame.columns]].copy()
            for c in frame.columns:
                if c not in ("USUBJID", "PARAMCD", "CNSR"):
                    frame[c] = as_date_text(frame[c])
            frame.to_csv(out / f"{name}_{kind}.csv", index=False)
            print(f"{name}_{kind}.csv: {len(frame)} rows")


if __name__ == "__main__":
    export(Path(sys.argv[1] if len(sys.argv) > 1 else "adam_os_csv"))
