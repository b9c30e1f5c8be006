"""The browser benchmark (python -m benchmarks --browser) runs at registry scale on a small
registry, one pass: a smoke run that never judges timings, only that every page and action is
measured and the numbers are there. The full run is in the README (issue 17)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"Overview", "Enrollment", "Survival", "Tumour response", "Safety", "Downstaging"}

pytestmark = pytest.mark.browser


def test_browser_benchmark_smoke_run(tmp_path):
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    from benchmarks.browser import MAX_SKEW_MS, actions_for
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"runs": [], "cold_start_s": 1.0}))      # the server benchmark's keys stay
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--browser", "--scale", "registry",
                           "--patients", "40", "--reps", "1", "--quiet", "--settle-ms", "100", "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)          # the table, in the test log
    result = json.loads(out.read_text())
    assert result["runs"] == [] and result["cold_start_s"] == 1.0
    run = result["browser"]["registry"]
    assert run["patients"] == 40 and run["reps"] == 1 and run["cached_reps"] == 1
    assert run["console_errors"] == []
    rows = {(r["page"], r["action"]): r for r in run["pages"]}
    from dashboard.app import PAGES as APP_PAGES
    assert {label for _, label in APP_PAGES} == PAGES
    for path, label in APP_PAGES:
        expected = [a.name for a in actions_for(path, has_second_cut=True)]
        assert {"open", "shared link", "dropdown", "slider", "chip", "data cut", "back", "clear all"} <= set(expected)
        assert ("page option" in expected) == (path != "/")
        for name in expected:
            row = rows.pop((label, name))
            for mode in ("uncached", "cached"):
                s = row[mode]
                assert s["n"] == 1 and 0 < s["p50_ms"] <= s["p95_ms"], (label, name, mode, s)
                assert s["requests"] >= 1 and 1 <= s["waves"] <= s["requests"] and s["chain"] >= 1, (label, name, s)
                assert 0 < s["server_ms_p50"] < s["p95_ms"] and 0 < s["server_share"] < 1, (label, name, s)
                assert s["to_first_request_ms_p50"] >= 0 and s["after_last_answer_ms_p50"] >= 0
            example = row["example"]
            assert example["unmatched"] == 0, (label, name, example)      # Playwright saw every request
            assert len(example["wave_detail"]) == example["waves"]
            # Playwright's records matched to the page's requests: each left the page soon after it
            # was sent (a mismatch gives a negative or unrelated offset)
            assert -5 < example["clock_skew_ms"] < MAX_SKEW_MS, (label, name, example["clock_skew_ms"])
    assert rows == {}, f"unexpected rows: {sorted(rows)}"
    assert {s["page"] for s in run["summary"]} == PAGES
    assert "Tumour response" in proc.stdout and "uncached p50" in proc.stdout


def test_trace_of_one_action_breaks_its_time_down(tmp_path):
    """python -m benchmarks --browser --trace: one action traced on a small registry; the breakdown's
    parts add up to the action's time, scripting is split by script, and the raw trace is written
    for DevTools (never judged on time)."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    out = tmp_path / "trace.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--browser", "--trace", "--patients", "40",
                           "--page", "/response", "--action", "dropdown", "--quiet", "--settle-ms", "100",
                           "--trace-output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    trace = json.loads(out.read_text())
    b = trace["metadata"]["benchmark"]
    assert b["page"] == "Tumour response" and b["action"] == "dropdown" and b["mode"] == "uncached"
    assert set(b["parts_ms"]) == {"scripting", "style + layout", "paint + composite", "other tasks", "idle / network"}
    assert b["ms"] > 0 and abs(sum(b["parts_ms"].values()) - b["ms"]) <= max(5, 0.02 * b["ms"])
    assert b["parts_ms"]["scripting"] > 0
    assert abs(sum(b["scripting_ms"].values()) - b["parts_ms"]["scripting"]) <= 1
    assert "plotly.js" in b["scripting_ms"] and "dash-renderer / React" in b["scripting_ms"]
    assert 1 <= len(b["top_functions"]) <= 10 and all(f["self_ms"] > 0 for f in b["top_functions"])
    names = {e.get("name") for e in trace["traceEvents"]}
    assert {"RunTask", "ProfileChunk", "Profile"} <= names          # what DevTools' Performance panel reads
    for line in ("trace of Tumour response: dropdown (uncached)", "scripting", "plotly.js", "style + layout",
                 "paint + composite", "idle / network", "top 10 functions by self time"):
        assert line in proc.stdout
