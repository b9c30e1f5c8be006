"""The result cache: keyed by snapshot, filters, scope, options and code; shared on disk."""
from pathlib import Path

from dashboard import cache, data
from dashboard.data import Scope
from dashboard.exports import run_export
from dashboard.filters import Filters


def test_keys_name_everything_a_result_depends_on(mini_snapshot):
    k = lambda **kw: cache.key("export:x", mini_snapshot, kw.pop("filters", Filters()),
                               kw.pop("scope", data.ALL_SITES), **kw)
    base = k()
    assert base == k()
    assert base != k(filters=Filters(bclc=("B",)))
    assert base != k(scope=Scope(("S01",)))
    assert base != k(endpoint="pfs")
    assert k(endpoint="pfs", by="sex") == k(by="sex", endpoint="pfs")


def test_a_cached_export_equals_a_fresh_one(mini_snapshot, monkeypatch):
    first = run_export("enrollment", mini_snapshot, Filters(site=("S01",)))
    again = run_export("enrollment", mini_snapshot, Filters(site=("S01",)))
    monkeypatch.setenv("REGISTRY_CACHE", "off")
    fresh = run_export("enrollment", mini_snapshot, Filters(site=("S01",)))
    assert first.rows.equals(again.rows) and first.rows.equals(fresh.rows)
    assert fresh.n_patients == 3


def test_scope_is_part_of_the_key_so_no_site_leaks_through_the_cache(mini_snapshot):
    everyone = run_export("enrollment", mini_snapshot)
    s02_only = run_export("enrollment", mini_snapshot, scope=Scope(("S02",)))
    assert set(everyone.rows.site_id) == {"S01", "S02"}
    assert set(s02_only.rows.site_id) == {"S02"}


def test_concurrent_requests_for_one_result_compute_it_once(mini_snapshot):
    """The cards of one page update ask for the same export at the same moment: the first computes,
    the others wait for it and read its result; a different key is not held up."""
    import threading
    import time
    calls = []

    def compute(tag):
        calls.append(tag)
        time.sleep(0.2)
        return {"value": tag}

    results = {}
    def ask(i, option):
        results[i] = cache.cached("test:single-flight", mini_snapshot, Filters(), data.ALL_SITES,
                                  lambda: compute(option), option=option)
    threads = [threading.Thread(target=ask, args=(i, "a")) for i in range(4)]
    threads.append(threading.Thread(target=ask, args=(4, "b")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == ["a", "b"]
    assert [results[i]["value"] for i in range(5)] == ["a", "a", "a", "a", "b"]


def test_the_store_prunes_its_oldest_entries(tmp_path, monkeypatch):
    import os
    monkeypatch.setattr(cache, "PRUNE_EVERY", 10)
    monkeypatch.setattr(cache, "MAX_ENTRIES", 20)
    store = cache.Store(str(tmp_path))
    for i in range(25):
        store.set(f"k{i}", i)
        os.utime(store._get_filename(f"k{i}"), (1_000_000 + i, 1_000_000 + i))     # k0 oldest
    # pruned at the 20th write? no: 20 entries is not more than 20. Nothing removed yet.
    assert store.get("k0") == 0
    for i in range(25, 30):                 # the 30th write looks: 30 entries > 20 -> down to 16
        store.set(f"k{i}", i)
        os.utime(store._get_filename(f"k{i}"), (1_000_000 + i, 1_000_000 + i))
    files = [f for f in os.listdir(tmp_path) if not f.endswith(".__wz_cache")]
    assert len(files) == 16
    assert store.get("k0") is None and store.get("k13") is None and store.get("k14") == 14
    assert store.get("k29") == 29
    assert store.prune() == 0               # under the limit: nothing to do


def test_the_app_s_startup_objects_are_frozen_so_full_collections_stay_short():
    """create_app() ends with gc.freeze(): the ~160,000 objects of the imports and the app are no
    longer walked by each full garbage collection (75-100 ms each, measured, landing on a page
    update). In a fresh process: after create_app, a full collection walks few objects."""
    import subprocess
    import sys
    code = ("import gc, time; from dashboard.app import create_app; create_app(); "
            "t = time.perf_counter(); gc.collect(); ms = (time.perf_counter() - t) * 1000; "
            "print(gc.get_freeze_count(), len(gc.get_objects()), ms)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout.split()
    frozen, walked = int(out[0]), int(out[1])
    assert frozen > 50_000 and walked < frozen / 20, (frozen, walked, out[2])
