"""The result cache: keyed by the verified snapshot, filters, scope, options and code; shared on
disk; every kind of value it stores reads back exactly as computed (faults: test_cache_faults.py)."""
import dataclasses
import hashlib
import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import cache, data
from dashboard.data import ALL_SITES, Scope
from dashboard.exports import Export, run_export
from dashboard.filters import Filters


def verified(snapshot):
    """The snapshot as the data layer hands it out once it verified its checksums."""
    return dataclasses.replace(snapshot, fingerprint=hashlib.sha256(str(snapshot.path).encode()).hexdigest())


@pytest.fixture
def snap(mini_snapshot):
    return verified(mini_snapshot)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("REGISTRY_CACHE", str(path))
    monkeypatch.setattr(cache, "_warned", set())
    return path


def entries(path):
    return sorted(n for n in os.listdir(path) if n.startswith(cache.ENTRY_PREFIX)) if path.exists() else []


def assert_same(read, fresh, where="value"):
    """Equal, and of the same types all the way down: DataFrames with the same dtypes, column
    order, index and nulls (None in text columns stays None; NaN stays NaN)."""
    assert type(read) is type(fresh), (where, type(read), type(fresh))
    if isinstance(fresh, pd.DataFrame):
        pd.testing.assert_frame_equal(read, fresh, check_dtype=True, check_exact=True, check_index_type=True,
                                      check_column_type=True, check_categorical=True, check_names=True)
        for c in fresh.columns[fresh.dtypes == object]:
            assert [type(x) for x in read[c]] == [type(x) for x in fresh[c]], (where, c)
    elif isinstance(fresh, Export):
        for f in ("name", "rows", "n_patients", "extra"):
            assert_same(getattr(read, f), getattr(fresh, f), f"{where}.{f}")
    elif isinstance(fresh, dict):
        assert list(read) == list(fresh), where
        for k in fresh:
            assert_same(read[k], fresh[k], f"{where}[{k!r}]")
    elif isinstance(fresh, (list, tuple)):
        assert len(read) == len(fresh), where
        for i, (a, b) in enumerate(zip(read, fresh)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(fresh, (float, np.floating)) and math.isnan(fresh):
        assert math.isnan(read), where
    else:
        if isinstance(fresh, np.generic):
            assert read.dtype == fresh.dtype, where
        assert read == fresh, where


def test_keys_name_everything_a_result_depends_on(snap):
    k = lambda **kw: cache.key("export:x", kw.pop("snapshot", snap), kw.pop("filters", Filters()),
                               kw.pop("scope", data.ALL_SITES), **kw)
    base = k()
    assert base == k()
    assert base != k(filters=Filters(bclc=("B",)))
    assert base != k(scope=Scope(("S01",)))
    assert base != k(endpoint="pfs")
    assert k(endpoint="pfs", by="sex") == k(by="sex", endpoint="pfs")
    # the same folder verified again with other files (re-published, changed) is another snapshot
    assert base != k(snapshot=dataclasses.replace(snap, fingerprint="another verification"))


def test_a_cached_export_equals_a_fresh_one(snap, own_cache, monkeypatch):
    first = run_export("enrollment", snap, Filters(site=("S01",)))
    again = run_export("enrollment", snap, Filters(site=("S01",)))
    monkeypatch.setenv("REGISTRY_CACHE", "off")
    fresh = run_export("enrollment", snap, Filters(site=("S01",)))
    assert_same(again, fresh)
    assert_same(first, fresh)
    assert fresh.n_patients == 3            # tests/fixtures.py: P1, P2 and P5 are enrolled at S01
    assert len(entries(own_cache)) == 1     # the export, stored once


def test_scope_is_part_of_the_key_so_no_site_leaks_through_the_cache(snap, own_cache):
    everyone = run_export("enrollment", snap)
    s02_only = run_export("enrollment", snap, scope=Scope(("S02",)))
    assert set(everyone.rows.site_id) == {"S01", "S02"}
    assert set(s02_only.rows.site_id) == {"S02"}


def test_concurrent_requests_for_one_result_compute_it_once(snap, own_cache):
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
        results[i] = cache.cached("test:single-flight", snap, Filters(), data.ALL_SITES,
                                  lambda: compute(option), option=option)
    threads = [threading.Thread(target=ask, args=(i, "a")) for i in range(4)]
    threads.append(threading.Thread(target=ask, args=(4, "b")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == ["a", "b"]
    assert [results[i]["value"] for i in range(5)] == ["a", "a", "a", "a", "b"]


# --- every kind of value read back exactly, over the synthetic registry -------------------------
@pytest.fixture
def recorded(monkeypatch):
    """(kind, key, the value computed) of every cache.cached call that computed."""
    out = []
    original = cache.cached

    def recording(kind, snapshot, filters, scope, compute, **options):
        def computing():
            value = compute()
            out.append((kind, cache.key(kind, snapshot, filters, scope, **options), value))
            return value
        return original(kind, snapshot, filters, scope, computing, **options)
    monkeypatch.setattr(cache, "cached", recording)
    return out


EXPORT_RUNS = [(name, {}) for name in (
    "patients", "enrollment", "accrual", "baseline-table", "followup-status", "ae-incidence", "waterfall",
    "response-summary", "spider", "swimmer", "response-consistency", "staging-flow", "downstaging-summary",
    "downstaging-cif", "downsizing", "km-summary", "km-curve", "km-risk-table", "cox")] + [
    ("km-summary", {"endpoint": "pfs", "by": "child_pugh_class"}),      # groups with no median: NaN
    ("km-risk-table", {"times": (0, 90, 180.5)}),
    ("ae-incidence", {"level": "soc", "by": "bclc_stage", "within_days": 30}),
    ("response-summary", {"by": "etiology_group"}),
    ("downstaging-cif", {"by": "bclc_stage"})]


@pytest.mark.parametrize("filters", [Filters(), Filters(bclc=("B", "C"), sex=("F",))], ids=["all", "B,C women"])
def test_every_cached_kind_reads_back_exactly_as_computed(synthetic_root, own_cache, recorded, monkeypatch, filters):
    """Each value cache.cached is called with today (exports/__init__.py: n_patients and every
    export; exports/staging.py: staging_counts; exports/response.py: swimmer-lanes;
    exports/safety.py: ae-counts), computed over the synthetic registry and compared with what
    the store reads back: same types, dtypes, nulls, column order and index."""
    from dashboard.exports.response import swimmer_lanes
    from dashboard.exports.safety import incidence_counts
    from dashboard.exports.staging import staging_counts
    snapshot = verified(data.resolve("latest", synthetic_root))
    for name, options in EXPORT_RUNS:
        run_export(name, snapshot, filters, **options)
    for by in ("none", "bclc_stage"):
        staging_counts(snapshot, filters, ALL_SITES, by)
        incidence_counts(snapshot, filters, ALL_SITES, by)
    swimmer_lanes(snapshot, filters, ALL_SITES, "overall", "time_desc")
    kinds = {kind.split(":")[0] for kind, _, _ in recorded}
    assert kinds == {"export", "n_patients", "staging_counts", "ae-counts", "swimmer-lanes"}
    assert len(entries(own_cache)) == len({k for _, k, _ in recorded})       # every one stored
    for kind, key, fresh in recorded:
        read = cache.store().get(key)
        assert read is not cache.MISS, kind
        assert_same(read, fresh, kind)

    # and read through the callers, without a query
    queries = []
    monkeypatch.setattr(data, "_run", lambda sql, *a, **k: queries.append(sql))
    for name, options in EXPORT_RUNS:
        run_export(name, snapshot, filters, **options)
    assert queries == []


def test_frames_read_back_exactly_with_extension_types_nulls_and_dates(snap, own_cache):
    frame = pd.DataFrame({
        "text": ["a", None, "c"], "nothing": np.array([None, None, None], dtype=object),
        "count": pd.array([1, None, 3], dtype="Int32"), "x": [0.5, np.nan, -np.inf],
        "when": pd.to_datetime(["2024-01-01", None, "2024-03-01"]).as_unit("us"),
        "day": np.array(["2024-01-02", "NaT", "2024-01-04"], dtype="datetime64[s]"),
        "flag": [True, False, True], "small": np.array([1, 2, 3], dtype="int8"),
        "zoned": pd.to_datetime(["2024-01-01", None, "2024-03-01"]).tz_localize("Asia/Taipei"),
        "share": pd.array([0.5, None, 1.0], dtype="Float64"), "yes": pd.array([True, None, False], dtype="boolean"),
    }, index=pd.RangeIndex(10, 13, name="row"))
    values = [frame, frame.iloc[:0], pd.DataFrame(columns=["a", "b"]),
              {"levels": ["B", "C"], "n": np.int64(4), "ratio": np.float64("nan"), "pair": (1, "a"),
               "inf": float("inf"), "rows": frame},
              Export("x", frame, 3, {"times": [0.0, 90.5], "p": np.float32(0.25), "nested": {"t": (None, 1.5)}})]
    for i, value in enumerate(values):
        fresh = cache.cached("test:frames", snap, Filters(), ALL_SITES, lambda: value, i=i)
        read = cache.cached("test:frames", snap, Filters(), ALL_SITES, lambda: pytest.fail("computed again"), i=i)
        assert fresh is value
        assert_same(read, value, f"value {i}")


@pytest.mark.parametrize("value", [
    pd.DataFrame({"text": ["a", np.nan]}),                   # NaN among text would come back None
    pd.DataFrame({"day": [pd.Timestamp("2024-01-01").date()]}),
    pd.DataFrame({"a": [1]}, index=["r"]),
    pd.DataFrame([[1, 2]], columns=["a", "a"]), pd.DataFrame(),
    pd.DataFrame({"level": pd.Categorical([], categories=["A", "B"])}),    # would lose its categories
    pd.DataFrame({"text": pd.array(["a"], dtype="string")}),
    {1: "non-text key"}, {"$frame": 0}, {"a set"}, object(), 2**70, Path("/etc/passwd"),
], ids=lambda v: type(v).__name__)
def test_a_value_that_would_not_read_back_exactly_is_computed_and_not_stored(snap, own_cache, caplog, value):
    for _ in range(2):
        got = cache.cached("test:unsupported", snap, Filters(), ALL_SITES, lambda: value)
        assert got is value
    assert entries(own_cache) == []
    logged = [r for r in caplog.records if r.name == "dashboard.cache" and r.levelno == logging.WARNING]
    assert len(logged) == 1 and "test:unsupported" in logged[0].getMessage()


def test_a_stored_view_that_is_not_json_is_a_miss_and_is_deleted(own_cache):
    from dashboard import wire
    store = cache.store()
    assert store.set("f" * 64, b'{"figure": [1, 2', "view:x")
    assert store.get("f" * 64) == b'{"figure": [1, 2'          # the bytes are whole...
    assert store.get("f" * 64, wire.decode) is cache.MISS      # ...but not the JSON of a view
    assert entries(own_cache) == []


def test_clear_removes_results_and_keeps_documents(snap, own_cache):
    cache.cached("test:clear", snap, Filters(), ALL_SITES, lambda: 1)
    cache.put_doc("validation-x", {"ok": True})
    assert cache.store().clear() == 1
    assert entries(own_cache) == [] and cache.get_doc("validation-x") == {"ok": True}


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
