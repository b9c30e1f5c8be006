"""Writes synthetic_forest.csv: OS days and event, BCLC stage and the raw baseline fields the forest
plot's subgroups derive from (age, sex, etiology, ECOG, Child-Pugh, AFP, largest tumour, up-to-seven,
site) of every patient of the built-in synthetic registry's latest cut (python -m dashboard generate,
default size), for make_forest_reference.R, which derives the subgroups itself."""
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from dashboard import data, exports  # noqa: E402
from dashboard.generate import generate_registry  # noqa: E402

COLUMNS = ["patient_id", "site_id", "bclc_stage", "os_days", "os_event", "age_years", "sex", "etiology", "ecog_ps",
           "child_pugh_class", "afp_ng_ml", "largest_tumor_cm", "is_within_up_to_seven"]

with tempfile.TemporaryDirectory() as root:
    generate_registry(Path(root), progress=False)
    rows = exports.compute_export("patients", data.resolve("latest", Path(root))).rows
    out = rows[COLUMNS].sort_values("patient_id")
    out["os_event"] = out["os_event"].astype(int)
    out["is_within_up_to_seven"] = out["is_within_up_to_seven"].map({True: 1, False: 0})
    assert len(out) == 600 and out["os_days"].notna().all()
    out.to_csv(HERE / "synthetic_forest.csv", index=False)
