"""Faults of the result cache (issue 14, items 1, 5 and 7): a folder another user controls is
refused and nothing in it is read; nothing is ever unpickled; a full, read-only, deleted or
replaced folder turns caching off for that write only (logged once), never a request; entries
are bounded in bytes. Run as root (chown to another uid)."""
import dataclasses
import errno
import hashlib
import logging
import os
import pickle
import shutil
import stat
import tempfile

import pytest

from dashboard import cache, data
from dashboard.data import ALL_SITES
from dashboard.filters import Filters

FOREIGN_UID = 12345             # any uid that is not this process's


def verified(snapshot):
    """The snapshot as the data layer hands it out once it verified its checksums (the
    fingerprint's content does not matter to the cache, only that it names what was verified)."""
    return dataclasses.replace(snapshot, fingerprint=hashlib.sha256(str(snapshot.path).encode()).hexdigest())


@pytest.fixture
def snap(mini_snapshot):
    return verified(mini_snapshot)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A cache folder of this test's own (not created yet), with the once-per-process log reset."""
    path = tmp_path / "cache"
    monkeypatch.setenv("REGISTRY_CACHE", str(path))
    monkeypatch.delenv("REGISTRY_CACHE_MAX_MB", raising=False)
    monkeypatch.setattr(cache, "_warned", set(), raising=False)
    return path


class Compute:
    """A compute function that counts its calls."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def ask(snap, value, name="a"):
    """cached() of one key (`name`); returns (result, how many times it was computed)."""
    compute = Compute(value)
    return cache.cached("test:fault", snap, Filters(), ALL_SITES, compute, name=name), compute.calls


def entries(path):
    """The entry files of a cache folder (no temp or lock files)."""
    return sorted(n for n in os.listdir(path) if not n.startswith("."))


def cache_warnings(caplog):
    return [r for r in caplog.records if r.name == "dashboard.cache" and r.levelno >= logging.WARNING]


class Planted:
    """A pickle that creates a folder when it is unpickled: proof that it ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def give_away(path):
    """Make a folder and everything in it belong to another user (as root)."""
    for p in [path, *path.iterdir()]:
        os.chown(p, FOREIGN_UID, -1)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


# --- a folder this server does not own ---------------------------------------------------------
@needs_root
def test_a_pickle_planted_in_a_folder_owned_by_another_user_never_runs(tmp_path, snap, monkeypatch):
    own, foreign, marker = tmp_path / "own", tmp_path / "foreign", tmp_path / "the-pickle-ran"
    monkeypatch.setenv("REGISTRY_CACHE", str(own))
    assert ask(snap, 7) == (7, 1)                       # an entry under the key's real file name
    names = sorted(str(p.relative_to(own)) for p in own.rglob("*") if p.is_file())
    assert names
    for name in names:                                  # the other user plants a pickle under each,
        (foreign / name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # after the entry's first 4 bytes (cachelib's pickles, which the store used to write, follow
        # a 4-byte expiry time)
        (foreign / name).write_bytes((own / name).read_bytes()[:4] + pickle.dumps(Planted(marker)))
    for p in [foreign, *foreign.rglob("*")]:
        os.chown(p, FOREIGN_UID, -1)
    monkeypatch.setenv("REGISTRY_CACHE", str(foreign))
    assert ask(snap, 8) == (8, 1)                       # computed, not read from the foreign folder
    assert not marker.exists()
    assert sorted(str(p.relative_to(foreign)) for p in foreign.rglob("*") if p.is_file()) == names
    with pytest.raises(cache.CacheFolderError) as refused:
        cache.check_folder()
    assert str(foreign) in str(refused.value) and f"owned by uid {FOREIGN_UID}" in str(refused.value)


@needs_root
def test_a_forged_validation_report_in_a_foreign_folder_is_never_read(tmp_path, monkeypatch):
    own, foreign = tmp_path / "own", tmp_path / "foreign"
    monkeypatch.setenv("REGISTRY_CACHE", str(own))
    cache.put_doc("validation-2025-03-31-abc", {"ok": False, "errors": ["checksum"]})
    assert cache.get_doc("validation-2025-03-31-abc") == {"ok": False, "errors": ["checksum"]}
    shutil.copytree(own, foreign)
    forged = (foreign / entries(foreign)[0]).read_bytes().replace(b"false", b"true ")
    (foreign / entries(foreign)[0]).write_bytes(forged)
    give_away(foreign)
    monkeypatch.setenv("REGISTRY_CACHE", str(foreign))
    assert cache.get_doc("validation-2025-03-31-abc") is None
    cache.put_doc("validation-2025-03-31-abc", {"ok": False})          # nor written into it
    assert (foreign / entries(foreign)[0]).read_bytes() == forged


@pytest.mark.parametrize("kind", ["world-writable", "group-writable", "symlink", "file"])
def test_a_folder_others_can_write_or_that_is_not_a_plain_folder_is_refused(tmp_path, snap, monkeypatch, kind):
    target, path = tmp_path / "real", tmp_path / "cache"
    if kind == "world-writable" or kind == "group-writable":
        path.mkdir()
        os.chmod(path, 0o777 if kind == "world-writable" else 0o770)
        reason = "group or other users can write"
    elif kind == "symlink":
        target.mkdir(mode=0o700)
        path.symlink_to(target)
        reason = "symbolic link"
    else:
        path.write_text("not a cache")
        reason = "not a folder"
    monkeypatch.setenv("REGISTRY_CACHE", str(path))
    with pytest.raises(cache.CacheFolderError) as refused:
        cache.check_folder()
    assert str(path) in str(refused.value) and reason in str(refused.value)
    assert ask(snap, 1) == (1, 1) and ask(snap, 1) == (1, 1)           # computed each time, never stored
    if kind != "file":
        assert entries(path) == [] and entries(target if kind == "symlink" else path) == []
    else:
        assert path.read_text() == "not a cache"


def test_the_server_does_not_start_on_a_folder_others_can_write(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "cache"
    path.mkdir()
    os.chmod(path, 0o777)
    out = subprocess.run([sys.executable, "-c", "from dashboard.app import create_app; create_app()"],
                         cwd=cache.CODE, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "REGISTRY_CACHE": str(path)})
    assert out.returncode != 0
    assert f"CacheFolderError: refusing the result cache folder {path}: group or other users can write" in out.stderr
    # as a person starts it: one line saying why, no traceback
    started = subprocess.run([sys.executable, "app.py", "--port", "1"], cwd=cache.CODE, capture_output=True,
                             text=True, timeout=120, env={**os.environ, "REGISTRY_CACHE": str(path)})
    assert started.returncode == 1 and "Traceback" not in started.stderr
    assert started.stderr.startswith(f"error: refusing the result cache folder {path}: group or other users")


def test_the_default_folder_is_created_0700_under_the_temp_dir_and_named_for_the_user(tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTRY_CACHE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cache.check_folder()
    default = tmp_path / f"hcc-registry-cache-{os.geteuid()}"
    assert default.is_dir() and stat.S_IMODE(default.stat().st_mode) == 0o700
    explicit = tmp_path / "deep" / "explicit"
    monkeypatch.setenv("REGISTRY_CACHE", str(explicit))
    cache.check_folder()
    assert stat.S_IMODE(explicit.stat().st_mode) == 0o700


@needs_root
def test_a_default_folder_made_first_by_another_user_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTRY_CACHE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    default = tmp_path / f"hcc-registry-cache-{os.geteuid()}"
    default.mkdir(mode=0o700)
    os.chown(default, FOREIGN_UID, -1)
    with pytest.raises(cache.CacheFolderError, match=f"{default}.*owned by uid {FOREIGN_UID}"):
        cache.check_folder()


def test_with_the_cache_off_nothing_is_created_checked_or_written(tmp_path, snap, monkeypatch):
    monkeypatch.setenv("REGISTRY_CACHE", "off")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cache.check_folder()
    assert ask(snap, 3) == (3, 1) and ask(snap, 3) == (3, 1)
    cache.put_doc("validation-x", {"ok": True})
    assert cache.get_doc("validation-x") is None
    assert os.listdir(tmp_path) == []


# --- data, never code --------------------------------------------------------------------------
def test_nothing_is_pickled_or_unpickled(folder, snap, monkeypatch):
    import pandas as pd

    from dashboard.exports import Export

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used by the result cache")
    for name in ("dump", "dumps", "load", "loads", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    values = [b"view bytes", 42, "lane\x1flane", {"levels": ["B", "C"], "n": 3, "rates": pd.DataFrame({"x": [1]})},
              (pd.DataFrame({"a": [1.5]}), pd.DataFrame({"b": ["x"]})),
              Export("enrollment", pd.DataFrame({"site_id": ["S01"]}), 3, {"by": "none"})]
    for i, value in enumerate(values):
        first, _ = ask(snap, value, name=str(i))
        again, computed = ask(snap, value, name=str(i))
        assert computed == 0, value                     # read back from the store
    assert len(entries(folder)) == len(values)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "unknown tag", "empty"])
def test_an_entry_that_does_not_decode_is_a_miss_and_is_deleted(folder, snap, damage):
    assert ask(snap, {"n": 5}) == ({"n": 5}, 1)
    [name] = entries(folder)
    raw = (folder / name).read_bytes()
    damaged = {"garbage": os.urandom(len(raw)), "truncated": raw[:len(raw) - 3],
               "unknown tag": raw[:len(cache.MAGIC)] + b"?" + raw[len(cache.MAGIC) + 1:], "empty": b""}[damage]
    (folder / name).write_bytes(damaged)
    assert ask(snap, {"n": 5}) == ({"n": 5}, 1)        # computed again, and stored again whole
    assert (folder / name).read_bytes() == raw
    (folder / name).write_bytes(damaged)
    cache.store().get(name.removeprefix(cache.ENTRY_PREFIX))
    assert not (folder / name).exists()


# --- a full, read-only, deleted or replaced folder ---------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_degrades_to_computing_and_is_logged_once(folder, snap, monkeypatch, caplog, code):
    """ENOSPC cannot be made for real here (root writes past chmod; no small filesystem to fill):
    the store's write system call is made to fail as a full disk fails it, after the temp file
    was created, so the leftover must be cleaned up."""
    assert ask(snap, 1, name="before") == (1, 1)
    real = cache._writev

    def full(fd, buffers):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(cache, "_writev", full)
    for i in range(3):
        assert ask(snap, i, name=f"full{i}") == (i, 1)
    assert ask(snap, 1, name="before") == (1, 0)         # what was stored still reads
    assert [n for n in os.listdir(folder) if n.startswith(".tmp")] == []
    warnings = cache_warnings(caplog)
    assert len(warnings) == 1 and os.strerror(code) in warnings[0].getMessage()
    monkeypatch.setattr(cache, "_writev", real)         # space again: caching goes on
    assert ask(snap, 0, name="full0") == (0, 1) and ask(snap, 0, name="full0") == (0, 0)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_folder_degrades_to_computing_and_is_logged_once(folder, snap, monkeypatch, caplog, code):
    """As root, chmod does not stop writes and no read-only mount can be made: the store's open
    for writing fails as on a read-only filesystem; opens for reading still work."""
    assert ask(snap, 1, name="before") == (1, 1)
    real = cache._open

    def read_only(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), path)
        return real(path, flags, *args, **kwargs)
    monkeypatch.setattr(cache, "_open", read_only)
    assert ask(snap, 1, name="before") == (1, 0)
    for i in range(3):
        assert ask(snap, i, name=f"ro{i}") == (i, 1)
    assert ask(snap, 0, name="ro0") == (0, 1)            # not stored
    cache.put_doc("validation-y", {"ok": True})          # silently not stored either
    assert cache.get_doc("validation-y") is None
    warnings = cache_warnings(caplog)
    assert len(warnings) == 1 and os.strerror(code) in warnings[0].getMessage()


def test_a_folder_deleted_while_running_is_recreated_0700_and_caching_goes_on(folder, snap):
    assert ask(snap, 1, name="one") == (1, 1)
    shutil.rmtree(folder)
    assert ask(snap, 1, name="one") == (1, 1)            # lost with the folder: computed again
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert ask(snap, 1, name="one") == (1, 0)
    assert ask(snap, 2, name="two") == (2, 1) and ask(snap, 2, name="two") == (2, 0)


def test_a_folder_replaced_by_a_file_turns_caching_off_logged_once(folder, snap, caplog):
    assert ask(snap, 1, name="one") == (1, 1)
    shutil.rmtree(folder)
    folder.write_text("not a cache")
    for _ in range(3):
        assert ask(snap, 2, name="two") == (2, 1)
    assert folder.read_text() == "not a cache"
    warnings = cache_warnings(caplog)
    assert len(warnings) == 1 and str(folder) in warnings[0].getMessage() and "not a folder" in warnings[0].getMessage()
    cache.put_doc("validation-z", {"ok": True})
    assert cache.get_doc("validation-z") is None
    with pytest.raises(cache.CacheFolderError):
        cache.check_folder()


@pytest.mark.parametrize("broken", ["file instead of folder", "disk full"])
def test_page_callbacks_answer_the_same_with_the_cache_broken(mini_root, dash_app, folder, monkeypatch, broken):
    """Every callback of a page answers 200 with the same bytes as with the cache off."""
    from dashboard.replay import Session, update_values
    monkeypatch.setenv("REGISTRY_DATA", str(mini_root))
    resolve = data.resolve
    # stands in for the data layer's verification (dashboard/data.py), which sets the fingerprint
    monkeypatch.setattr(data, "resolve", lambda *a, **k: verified(resolve(*a, **k)))
    snapshot_id = resolve("latest").snapshot_id     # validated now: the report is in memory
    session = Session(dash_app)
    answers = []
    send = session.replayer._send
    session.replayer._send = lambda body: answers.append(send(body)) or answers[-1]

    def replay(path):
        answers.clear()
        callbacks, sync, base = session.plan(path)
        sync_values, values = update_values(base, snapshot_id, {"bclc": ["B", "C"]})
        session.replayer.post(sync, sync_values)
        for dep in callbacks:
            session.replayer.post(dep, values)          # raises on any answer but 200/204
        return list(answers)

    if broken == "file instead of folder":
        shutil.rmtree(folder, ignore_errors=True)
        folder.write_text("not a cache")
    else:
        def full(fd, buffers):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(cache, "_writev", full)
    for path in ("/", "/safety"):
        with_broken_cache = replay(path)
        monkeypatch.setenv("REGISTRY_CACHE", "off")
        assert replay(path) == with_broken_cache
        monkeypatch.setenv("REGISTRY_CACHE", str(folder))


# --- bounded in bytes and entries --------------------------------------------------------------
def test_a_value_over_an_eighth_of_the_bound_or_64_mb_is_returned_but_not_stored(folder, snap, monkeypatch):
    """Issue 14 item 7: a km-risk-table with 500,000 times made a 55 MB entry; 100 MB is refused
    under the default bound (1024 MB: an eighth is 128 MB, capped at 64 MB)."""
    big = b"x" * 100_000_000
    assert ask(snap, big, name="big") == (big, 1)
    assert ask(snap, big, name="big")[1] == 1 and entries(folder) == []
    monkeypatch.setenv("REGISTRY_CACHE_MAX_MB", "1")                   # an eighth: 131,072 bytes
    assert ask(snap, b"y" * 140_000, name="over")[1] == 1 and entries(folder) == []
    assert ask(snap, b"y" * 120_000, name="under")[1] == 1 and len(entries(folder)) == 1


def test_the_folder_is_pruned_oldest_first_when_its_bytes_go_over_the_bound(folder, snap, monkeypatch):
    monkeypatch.setenv("REGISTRY_CACHE_MAX_MB", "1")
    bound = 1 << 20
    order = []
    for i in range(40):
        before = set(entries(folder)) if folder.exists() else set()
        ask(snap, os.urandom(60_000), name=f"v{i}")
        new = sorted(set(entries(folder)) - before)
        if new:
            [name] = new
            os.utime(folder / name, ns=(10**18 + i * 10**9,) * 2)      # written one second apart
            order.append(name)
        total = sum((folder / n).stat().st_size for n in entries(folder))
        assert total <= bound, (i, total)
    kept = entries(folder)
    assert 0 < len(kept) < 40 and set(kept) == set(order[-len(kept):])  # the newest survive


def test_two_processes_writing_keep_the_folder_near_its_bound(folder, snap, monkeypatch):
    """Each process tracks its own writes and looks at the folder when they reach an eighth of the
    bound, or when its last look plus its own writes cross it: two writers stay within 1.25x."""
    monkeypatch.setenv("REGISTRY_CACHE_MAX_MB", "1")
    cache.check_folder()
    stores = [cache.Store(folder), cache.Store(folder)]   # as two workers have
    for i in range(60):
        stores[i % 2].set(f"{i:064x}", os.urandom(50_000), "test")
        total = sum((folder / n).stat().st_size for n in entries(folder))
        assert total <= 1.25 * (1 << 20), (i, total)


def test_the_folder_is_pruned_oldest_first_above_its_entry_bound(folder, snap, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 20)
    for i in range(30):
        ask(snap, i, name=f"n{i}")
        assert len(entries(folder)) <= 20
    assert ask(snap, 29, name="n29") == (29, 0)


def test_an_unverified_snapshot_is_never_cached(folder, mini_snapshot):
    import dataclasses
    mini_snapshot = dataclasses.replace(mini_snapshot, fingerprint="")     # as snapshots.get_snapshot makes it
    assert ask(mini_snapshot, 1) == (1, 1) and ask(mini_snapshot, 1) == (1, 1)
    assert not folder.exists() or entries(folder) == []
    with pytest.raises(ValueError):
        cache.key("export:x", mini_snapshot, Filters(), ALL_SITES)


# --- documents (the data layer's validation reports) --------------------------------------------
def test_documents_round_trip_atomically_under_a_safe_file_name(folder):
    doc = {"ok": True, "errors": [], "warnings": ["x"], "n": 3, "ratio": 0.5, "nested": {"a": None}}
    cache.put_doc("validation-2025-03-31-0123abcd", doc)
    assert cache.get_doc("validation-2025-03-31-0123abcd") == doc
    assert cache.get_doc("validation-missing") is None
    cache.put_doc("../../escape me/\x00", {"ok": False})
    assert cache.get_doc("../../escape me/\x00") == {"ok": False}
    assert set(os.listdir(folder.parent)) == {"cache"} and len(entries(folder)) == 2
    assert all("/" not in n and ".." not in n.removeprefix(cache.DOC_PREFIX) for n in entries(folder))
    for name in entries(folder):
        (folder / name).write_bytes(b"\x00garbage")
    assert cache.get_doc("validation-2025-03-31-0123abcd") is None and len(entries(folder)) == 1
