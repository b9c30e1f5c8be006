"""Writes synthetic_os.csv: OS time, event and BCLC stage of every patient of the built-in synthetic
registry's latest cut (python -m dashboard generate, default size), for make_headline_reference.R."""
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from dashboard import data, exports  # noqa: E402
from dashboard.generate import generate_registry  # noqa: E402

with tempfile.TemporaryDirectory() as root:
    generate_registry(Path(root), progress=False)
    rows = exports.compute_export("patients", data.resolve("latest", Path(root))).rows
    out = rows[["patient_id", "bclc_stage", "os_days", "os_event"]].sort_values("patient_id")
    out["os_event"] = out["os_event"].astype(int)
    assert len(out) == 600 and out["os_days"].notna().all()
    out.to_csv(HERE / "synthetic_os.csv", index=False)
