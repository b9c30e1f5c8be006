"""The benchmark runs (registry scale, one pass) and reports every page: a smoke run that never
judges timings, only that the numbers are produced."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_run(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--scale", "registry", "--reps", "1",
                           "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    pages = {r["page"] for r in result["runs"]}
    assert pages == {"Overview", "Enrollment", "Survival", "Tumour response", "Safety", "Downstaging"}
    for r in result["runs"]:
        assert r["callbacks"] >= 1 and r["p50_ms"] > 0 and r["p95_ms"] >= r["p50_ms"] and r["floor_ms"] > 0
    assert result["cold_start_s"] > 0 and result["peak_rss_mb"] > 0
    print(proc.stdout)          # the table, in the test log
