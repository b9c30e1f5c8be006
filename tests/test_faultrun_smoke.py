"""The fault run (benchmarks/faultrun.py): how it judges answers, and a short run of it.

The judging tests give judge() recorded exchanges whose verdict is stated in the issue's words
(issue 14, "Tests and evidence"): a failure in flight on the killed worker is allowed, any other
5xx or error notice is not, a number must equal the export command's for the cut the answer
claims, and the changed cut must not be served after the change. The smoke run is short (4 users,
20 s, the faults at the same fractions of the run as in 60 s) and never judged on time; on a busy
host a fresh worker's first answers can take that long, and the run then fails with "no banner was
checked" rather than pass unverified. The smoke run serves with sign-in on (issue 15: the fault
tests still pass with sign-in on), every request signed in as a committee member through the
trusted-proxy header.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.faultrun import CUTS, Exchange, judge, read_banner

ROOT = Path(__file__).resolve().parent.parent
A, B, C = CUTS
EVENTS = {"kill": 20.0, "publish": 35.0, "change": 45.0}
# the export command's answers (python -m dashboard export patients): 600 patients, 433 men
TRUTH = {c: {"patients\t": {"n_patients": 600, "rows": []},
             "patients\tsex=M": {"n_patients": 433, "rows": []}} for c in CUTS}


def banner(t0, cut, n, total=600, query="sex=M", t1=None):
    return Exchange(user=0, kind="callback", what="..banner-count.children...", t0=t0, t1=t1 or t0 + 0.1,
                    status=200, cut=cut, query=query, numbers={"banner_n": n, "banner_total": total})


def verdict(*exchanges):
    found = judge(list(exchanges), EVENTS, TRUTH, grace=2.0)["found"]
    return {k: len(v) for k, v in found.items() if v}


def test_a_failure_in_flight_at_the_kill_is_allowed_any_other_is_not():
    reset = dict(user=0, kind="load", what="shell", status=None, error="ConnectionResetError")
    assert verdict(Exchange(t0=19.0, t1=20.1, **reset)) == {"in_flight_at_kill": 1}
    assert verdict(Exchange(t0=30.0, t1=30.2, **reset)) == {"failed_requests": 1}
    assert verdict(Exchange(t0=20.5, t1=20.6, **reset)) == {"failed_requests": 1}     # sent after the kill
    assert verdict(Exchange(0, "callback", "x", 19.9, 20.1, status=502)) == {"in_flight_at_kill": 1}
    assert verdict(Exchange(0, "callback", "x", 20.4, 20.6, status=500)) == {"other_5xx": 1}


def test_an_error_notice_is_a_failure():
    assert verdict(Exchange(0, "callback", "x", 5.0, 5.1, status=200, notice=True)) == {"error_notices": 1}


def test_numbers_are_those_of_the_cut_claimed():
    assert verdict(banner(10.0, B, 433)) == {}
    assert verdict(banner(10.0, B, 167)) == {"wrong_numbers": 1}          # sex swapped
    assert verdict(banner(10.0, B, 433, total=601)) == {"wrong_numbers": 1}
    assert verdict(banner(10.0, "2099-01-01", 433)) == {"unverified": 1}   # no truth to compare with


def test_the_changed_cut_is_not_served_after_the_change_and_grace():
    assert verdict(banner(46.9, C, 433)) == {}                              # within the grace
    assert verdict(banner(47.1, C, 433)) == {"served_after_change": 1}
    assert verdict(banner(47.1, B, 433)) == {}


def test_a_tab_on_the_changed_cut_may_get_a_message_instead_of_numbers():
    empty = dict(user=0, kind="callback", what="..banner-count.children...", status=200, query="")
    assert verdict(Exchange(t0=46.0, t1=46.1, asked=C, **empty)) == {"no_numbers_for_changed_cut": 1}
    # the "no longer available, reload" notice, answered once the file was being rewritten
    gone = dict(empty, notice=True, gone=True)
    assert verdict(Exchange(t0=44.9, t1=45.1, asked=C, **gone)) == {"no_numbers_for_changed_cut": 1}
    assert verdict(Exchange(t0=40.0, t1=40.1, asked=C, **gone)) == {"error_notices": 1}      # before it
    assert verdict(Exchange(t0=46.0, t1=46.1, asked=B, **gone)) == {"error_notices": 1}      # another cut
    assert verdict(Exchange(t0=46.0, t1=46.1, asked=C, notice=True, **{k: v for k, v in empty.items()})) == {
        "error_notices": 1}                                                                   # "Something went wrong"
    assert verdict(Exchange(t0=30.0, t1=30.1, asked=C, **empty)) == {"unverified": 1}
    assert verdict(Exchange(t0=46.0, t1=46.1, asked=B, **empty)) == {"unverified": 1}


def test_latest_follows_a_publication():
    load = dict(user=0, kind="load", what="shell", status=200, query="", asked_latest=True)
    assert verdict(Exchange(t0=38.0, t1=39.0, cut=B, **load)) == {"stale_latest": 1}
    assert verdict(Exchange(t0=38.0, t1=39.0, cut=C, **load)) == {}
    assert verdict(Exchange(t0=36.0, t1=39.0, cut=B, **load)) == {}        # within the grace
    assert verdict(Exchange(t0=38.0, t1=46.0, cut=B, **load)) == {}        # answered after the change


def test_the_banner_is_read_from_the_callback_json():
    ex = Exchange(0, "callback", "banner", 0, 0)
    read_banner({"banner-count": {"children": [{"props": {"children": "1,240"}, "type": "Strong"}, " of 2,600 patients"]},
                 "banner-cutoff": {"children": f"Data cut {B} · cut-off 30 Sep 2024"}}, ex)
    assert (ex.numbers, ex.cut) == ({"banner_n": 1240, "banner_total": 2600}, B)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("faultrun") / "faultrun.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.faultrun", "--users", "4", "--seconds", "20",
                           "--sign-in", "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(proc.stdout)          # the table, in the test log
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert proc.returncode == (0 if result["ok"] else 1)
    return result


def test_faultrun_smoke_makes_every_fault_and_judges_every_answer(smoke):
    events = smoke["events"]
    assert {"kill", "publish", "change"} <= set(events), events
    assert events["killed_pid"] not in events["workers_after"] and len(events["workers_after"]) == 2
    c = smoke["counts"]
    assert c["requests"] > 0
    assert c["2xx"] + c["in_flight_at_kill"] + c["other_5xx"] + c["other_http"] + c["failed_requests"] == c["requests"]
    assert smoke["truth"]["errors"] == []


def test_faultrun_smoke_finds_no_fault(smoke):
    """Fails until the server keeps every promise of issue 14 under the faults (see the table)."""
    failing = {k: smoke["examples"].get(k, [])[:3] for k in
               ("other_5xx", "other_http", "failed_requests", "error_notices", "wrong_numbers",
                "served_after_change", "stale_latest", "unverified") if smoke["counts"][k]}
    assert smoke["ok"], json.dumps({"failing": failing, "problems": smoke["problems"]}, indent=1)
