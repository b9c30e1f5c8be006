"""An explicit, read-only-by-key cache of derived results, shared by workers on disk.

Keys name everything a result depends on: the snapshot as this process verified it
(`Snapshot.fingerprint`: the manifest's hash and each file's identity after their checksums
matched), the filters, the site scope, the export and its options, and the code version. A
snapshot that was not verified in this process has no key: its results are computed, never read
or written. The cache holds data, never code: bytes, text and JSON values as they are, DataFrames
as Arrow IPC; nothing is pickled, and a value of any other type is computed and not stored.

The folder belongs to the server: `$REGISTRY_CACHE`, else `<temp dir>/hcc-registry-cache-<euid>`,
created 0700; a folder owned by another user, writable by group or others, a symbolic link or not
a folder is refused (`check_folder()` at start-up raises; later, caching is off). It is bounded in
bytes (`REGISTRY_CACHE_MAX_MB`, default 1024) and entries (MAX_ENTRIES), oldest pruned first. Any
failure of the folder (full, read-only, deleted, replaced) only means computing without the cache,
logged once per process per kind; a deleted folder is created again on the next write.
REGISTRY_CACHE=off: nothing is created, checked, read or written.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import re
import struct
import tempfile
import threading
import time
from contextlib import suppress
from functools import lru_cache
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

CODE = Path(__file__).resolve().parent.parent

MAX_ENTRIES = 5000          # above this many results on disk the oldest are removed (down to 80%)
DEFAULT_MAX_MB = 1024       # REGISTRY_CACHE_MAX_MB: above this many bytes too (down to 80%)
MAX_VALUE_SHARE = 8         # a value larger than the bound / 8 ...
MAX_VALUE_BYTES = 64 << 20  # ... or than 64 MB is not stored
PRUNE_EVERY = 200           # writes of a process between two looks at the folder (at the latest)
RETRY_SECONDS = 30          # a refused or missing folder is looked at again after this long

# An entry file: MAGIC, a type tag and the payload's length (so a truncated file is seen), payload.
MAGIC = b"HCC\x01"
HEADER = struct.Struct("<4scQ")
BYTES, TEXT, JSON, TREE = b"b", b"s", b"j", b"t"
ENTRY_PREFIX, DOC_PREFIX, TEMP_PREFIX = "r-", "doc-", ".tmp-"
PRUNE_LOCK = ".prune.lock"

READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
# the system calls that open and write entries (tests make them fail as a full or read-only disk does)
_open = os.open
_writev = os.writev


class CacheFolderError(RuntimeError):
    """The cache folder is not one this server owns alone (the message says why and what to do)."""


def enabled() -> bool:
    return os.environ.get("REGISTRY_CACHE") != "off"


def folder() -> Path:
    """The configured cache folder (nothing is created or checked)."""
    env = os.environ.get("REGISTRY_CACHE")
    if env and env != "off":
        return Path(env)
    return Path(tempfile.gettempdir()) / f"hcc-registry-cache-{os.geteuid()}"


def cache_dir() -> Path:
    """The cache folder, created (0700) if missing; the store checks it before any use. (For the
    data layer's validation reports until they use get_doc/put_doc, which check the folder.)"""
    path = folder()
    with suppress(OSError):
        _make(path)
    return path


def check_folder() -> None:
    """At start-up: make sure the cache folder is this server's alone (created 0700 if missing);
    CacheFolderError, for a person to read, otherwise. Nothing with REGISTRY_CACHE=off."""
    if enabled():
        store().open(strict=True)


def _make(path: Path) -> None:
    """Create the folder (mode 0700; missing parents as the umask says). An existing one stays."""
    try:
        os.mkdir(path, 0o700)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):
            os.mkdir(path, 0o700)
    except FileExistsError:
        pass


def open_folder(path: Path) -> int:
    """A descriptor of the cache folder, created 0700 if missing, after checking (on the open folder
    itself, so it cannot be swapped in between) that this user owns it and no one else can write
    into it. Entries are then opened relative to it: a folder deleted and made again by someone
    else is never read through it."""
    hint = ("Remove it or give it to this user (mode 0700), set REGISTRY_CACHE to a folder this user "
            "owns, or REGISTRY_CACHE=off to run without the result cache.")
    try:
        _make(path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        reason = "it is a symbolic link" if path.is_symlink() else \
            "it is not a folder" if e.errno in (errno.ENOTDIR, errno.EEXIST) else e.strerror
        raise CacheFolderError(f"refusing the result cache folder {path}: {reason}. {hint}") from None
    st = os.fstat(fd)
    reason = None
    if st.st_uid != os.geteuid():
        reason = f"it is owned by uid {st.st_uid}, not by this server's uid {os.geteuid()}"
    elif st.st_mode & 0o022:
        reason = f"group or other users can write into it (mode {st.st_mode & 0o777:o})"
    if reason:
        os.close(fd)
        raise CacheFolderError(f"refusing the result cache folder {path}: {reason}. {hint}")
    return fd


def bounds() -> tuple[int, int]:
    """(bytes, entries) the folder's results may hold."""
    text = os.environ.get("REGISTRY_CACHE_MAX_MB")
    mb = DEFAULT_MAX_MB
    if text:
        try:
            mb = float(text)
            if not (mb > 0 and math.isfinite(mb)):
                raise ValueError
        except ValueError:
            _warn_once("max-mb", f"REGISTRY_CACHE_MAX_MB={text!r} is not a positive number: using {DEFAULT_MAX_MB}")
            mb = DEFAULT_MAX_MB
    return int(mb * (1 << 20)), MAX_ENTRIES


# --- logged once per process per kind of failure ------------------------------------------------
_warned: set = set()
_warned_lock = threading.Lock()


def _warn_once(kind: str, message: str, exc_info: bool = False) -> None:
    """Log a cache problem once per process and kind: as an error with the traceback when
    exc_info (an unexpected failure), else as a warning."""
    with _warned_lock:
        if kind in _warned:
            return
        _warned.add(kind)
    (log.exception if exc_info else log.warning)("result cache: %s", message)


# --- values as bytes: data, never code ----------------------------------------------------------
class Unsupported(TypeError):
    """A value the store does not encode (it is computed, not stored)."""


class Corrupt(ValueError):
    """An entry that does not decode (a miss; the entry is deleted)."""


@lru_cache(maxsize=1)
def _export_type():
    from dashboard.exports import Export
    return Export


def encode(value) -> tuple[bytes, list]:
    """(tag, payload buffers) of a value: bytes as they are (page views: wire.encode's JSON), text
    as UTF-8, JSON values with orjson, and values holding DataFrames or exports (or tuples, numpy
    scalars, non-finite floats) as a tree: tagged JSON, then each DataFrame as an Arrow IPC stream.
    Unsupported for anything else."""
    t = type(value)
    if t is bytes:
        return BYTES, [value]
    if t is str:
        return TEXT, [value.encode("utf-8", "surrogatepass")]
    packer = _Packer()
    packed = packer.pack(value)
    try:
        if not packer.tagged:
            return JSON, [orjson.dumps(packed)]
        head = orjson.dumps({"value": packed, "frames": [f.size for f in packer.frames]})
    except orjson.JSONEncodeError as e:       # e.g. an int beyond 64 bits
        raise Unsupported(str(e)) from None
    return TREE, [struct.pack("<I", len(head)), head, *packer.frames]


def decode(tag: bytes, payload: bytes):
    """The value encode() wrote; Corrupt if the payload is not what its tag says."""
    try:
        if tag == BYTES:
            return payload
        if tag == TEXT:
            return payload.decode("utf-8", "surrogatepass")
        if tag == JSON:
            return orjson.loads(payload)
        if tag == TREE:
            (n,) = struct.unpack_from("<I", payload)
            head = orjson.loads(memoryview(payload)[4:4 + n])
            frames, at = [], 4 + n
            for size in head["frames"]:
                if type(size) is not int or at + size > len(payload):
                    raise Corrupt("frame beyond the entry")
                frames.append(memoryview(payload)[at:at + size])
                at += size
            if at != len(payload):
                raise Corrupt("bytes after the last frame")
            return _unpack(head["value"], frames)
    except Corrupt:
        raise
    except Exception as e:                    # any malformed payload (orjson, struct, Arrow, keys)
        raise Corrupt(f"{type(e).__name__}: {e}") from None
    raise Corrupt(f"unknown tag {tag!r}")


class _Packer:
    """Plain JSON values as they are; everything else as a one-key dict whose key starts with '$'
    (plain dicts with such keys are not stored, so a tag is never ambiguous)."""

    def __init__(self):
        self.frames: list = []
        self.tagged = False

    def pack(self, v):
        t = type(v)
        if v is None or t is str or t is bool or t is int:
            return v
        if t is float:
            if math.isfinite(v):
                return v
            self.tagged = True
            return {"$float": repr(v)}
        if t is list:
            return [self.pack(x) for x in v]
        if t is dict:
            if not all(type(k) is str and not k.startswith("$") for k in v):
                raise Unsupported("a dict whose keys are not all text, or start with '$'")
            return {k: self.pack(x) for k, x in v.items()}
        self.tagged = True
        if t is tuple:
            return {"$tuple": [self.pack(x) for x in v]}
        import numpy as np
        if isinstance(v, np.generic) and v.dtype.kind in "biuf":
            return {"$np": [v.dtype.str, self.pack(v.item())]}
        import pandas as pd
        if t is pd.DataFrame:
            self.frames.append(_frame_bytes(v))
            return {"$frame": len(self.frames) - 1}
        if t is _export_type():
            return {"$export": [self.pack(v.name), self.pack(v.rows), self.pack(v.n_patients), self.pack(v.extra)]}
        raise Unsupported(t.__name__)


def _unpack(v, frames):
    t = type(v)
    if t is list:
        return [_unpack(x, frames) for x in v]
    if t is not dict:
        return v
    if len(v) == 1:
        (tag, x), = v.items()
        if tag.startswith("$"):
            if tag == "$float":
                if x not in ("nan", "inf", "-inf"):
                    raise Corrupt(f"$float {x!r}")
                return float(x)
            if tag == "$tuple":
                return tuple(_unpack(y, frames) for y in x)
            if tag == "$np":
                import numpy as np
                dtype = np.dtype(x[0])
                if dtype.kind not in "biuf":
                    raise Corrupt(f"$np {x[0]!r}")
                return dtype.type(_unpack(x[1], frames))
            if tag == "$frame":
                return _frame_from(frames[x])
            if tag == "$export":
                name, rows, n, extra = (_unpack(y, frames) for y in x)
                return _export_type()(name, rows, n, extra)
            raise Corrupt(f"unknown tag {tag}")
    return {k: _unpack(x, frames) for k, x in v.items()}


def _frame_bytes(df):
    """A DataFrame as an Arrow IPC stream that reads back exactly: dtypes, nulls, column order and
    the RangeIndex. Only what reads back exactly is accepted: numpy, nullable (Int32, ...) and
    tz-aware date columns; text columns of str and None (not NaN); unique text column names; a
    RangeIndex. The schema's metadata holds the index and which columns are nullable, not pandas'
    metadata: building the columns here and the frame without it is 2-3 times as fast both ways
    (the patients export at 600 patients: 1.1 against 3.6 ms to write, 0.4 against 0.8 to read)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    index = df.index
    if type(index) is not pd.RangeIndex or not (index.name is None or type(index.name) is str) \
            or type(df.columns) is not pd.Index or df.columns.dtype != object \
            or not df.columns.is_unique or not all(type(c) is str for c in df.columns):
        raise Unsupported("a DataFrame without a RangeIndex or with duplicate or non-text column names")
    arrays, masked = [], {}
    try:
        for i, (name, column) in enumerate(df.items()):
            dtype = column.dtype
            if dtype == object:
                values = column.to_numpy()
                array = pa.array(values, type=pa.string(), from_pandas=True)     # ArrowTypeError if not text
                if array.null_count and not all(x is None for x in values[array.is_null().to_numpy(False)]):
                    raise Unsupported(f"column {name!r} holds NaN or NA among text")
            elif isinstance(dtype, pd.core.arrays.masked.BaseMaskedDtype):
                array = pa.array(column.array)
                masked[str(i)] = dtype.name
            elif isinstance(dtype, (np.dtype, pd.DatetimeTZDtype)) and dtype.kind in "mM":
                array = pa.array(column, from_pandas=True)                       # NaT as null
            elif isinstance(dtype, np.dtype) and dtype.kind in "biuf":
                array = pa.array(column.to_numpy())                              # NaN stays NaN
            else:       # e.g. a categorical: an empty one would come back without its categories
                raise Unsupported(f"column {name!r} of dtype {dtype}")
            arrays.append(array)
    except (pa.ArrowException, TypeError, ValueError) as e:
        if isinstance(e, Unsupported):
            raise
        raise Unsupported(f"a DataFrame Arrow does not hold: {e}") from None
    meta = {"index": [index.start, index.stop, index.step, index.name], "masked": masked}
    table = pa.Table.from_arrays(arrays, names=list(df.columns), metadata={b"hcc": orjson.dumps(meta)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _frame_from(buffer):
    import pandas as pd
    import pyarrow as pa
    table = pa.ipc.open_stream(pa.py_buffer(buffer)).read_all()
    meta = orjson.loads(table.schema.metadata[b"hcc"])
    df = table.to_pandas(ignore_metadata=True, use_threads=False)
    for i, name in meta["masked"].items():
        df.isetitem(int(i), pd.api.types.pandas_dtype(name).__from_arrow__(table.column(int(i))))
    start, stop, step, name = meta["index"]
    if (start, stop, step, name) != (0, len(df), 1, None):
        df.index = pd.RangeIndex(start, stop, step, name=name)
    return df


# --- the store: one file per key in a folder of this server's -----------------------------------
MISS = object()


class Store:
    """One file per key (ENTRY_PREFIX + key) in the cache folder, written to a temp file of this
    process and thread and renamed over the entry (readers see a whole entry or none). Every file
    is opened relative to the folder's descriptor (open_folder). Results are pruned, oldest first,
    when their bytes or number go over `bounds()`: each process counts what it writes and looks at
    the folder (one listing) when its count since the last look passes an eighth of the bound or
    PRUNE_EVERY writes, or the last look's total plus its writes passes the bound."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._fd: int | None = None
        self._lost_fds: list[int] = []
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._seen: tuple[int, int] | None = None       # (bytes, entries) at the last look
        self._since = [0, 0]                            # (bytes, entries) written since

    def open(self, strict: bool = False) -> int | None:
        """The folder's descriptor; None (logged once) if it is refused, CacheFolderError if strict."""
        fd = self._fd
        if fd is not None:
            return fd
        with self._lock:
            if self._fd is None:
                if not strict and time.monotonic() < self._retry_at:
                    return None
                try:
                    self._fd = open_folder(self.path)
                except CacheFolderError as e:
                    self._retry_at = time.monotonic() + RETRY_SECONDS
                    if strict:
                        raise
                    _warn_once("folder", f"caching is off: {e}")
                    return None
            return self._fd

    def _lose(self, fd: int) -> None:
        """The folder behind fd is gone: open (create) it again on next use. The old descriptor is
        kept open, not closed: another thread may be using its number, which a close would let the
        next open reuse for some other file."""
        with self._lock:
            if self._fd == fd:
                self._fd = None
                self._lost_fds.append(fd)

    # reading
    def get(self, key: str, check=None):
        """The value stored under key, passed through check (e.g. a decoder) if given, or MISS. An
        entry that does not decode, or that check rejects, is deleted."""
        return self._get(ENTRY_PREFIX + key, check)

    def _get(self, name: str, check=None):
        try:
            fd = self.open()
            if fd is None:
                return MISS
            try:
                tag, payload = _read_entry(fd, name)
            except FileNotFoundError:
                return MISS
            except Corrupt as e:
                self._discard(fd, name, e)
                return MISS
            except OSError as e:
                _warn_once(f"read:{errno.errorcode.get(e.errno, e.errno)}",
                           f"cannot read from {self.path}: {e.strerror}; computing without the cache")
                return MISS
            try:
                value = decode(tag, payload)
                return check(value) if check is not None else value
            except Exception as e:
                self._discard(fd, name, e)
                return MISS
        except Exception:                   # never fail a request for the cache's sake
            _warn_once("get", "reading failed; computing without the cache", exc_info=True)
            return MISS

    def _discard(self, fd: int, name: str, why) -> None:
        _warn_once("corrupt", f"an entry of {self.path} did not decode ({why}); it was deleted")
        with suppress(OSError):
            os.unlink(name, dir_fd=fd)

    # writing
    def set(self, key: str, value, kind: str = "") -> bool:
        """Store value under key if it can be encoded and is small enough; True if stored."""
        try:
            try:
                tag, chunks = encode(value)
            except Unsupported as e:
                _warn_once(f"unsupported:{kind}:{type(value).__name__}",
                           f"{kind or 'a result'} is not stored ({e}): computed each time")
                return False
            size = HEADER.size + sum(len(c) if isinstance(c, bytes) else c.size for c in chunks)
            max_bytes, _ = bounds()
            if size > min(max_bytes // MAX_VALUE_SHARE, MAX_VALUE_BYTES):
                _warn_once(f"too-big:{kind}", f"{kind or 'a result'} of {size:,} bytes is not stored "
                                              f"(over an eighth of the bound, or 64 MB)")
                return False
            if not self._write(ENTRY_PREFIX + key, [HEADER.pack(MAGIC, tag, size - HEADER.size), *chunks]):
                return False
            self._count(size)
            return True
        except Exception:
            _warn_once("set", "writing failed; computing without the cache", exc_info=True)
            return False

    def _write(self, name: str, chunks) -> bool:
        for attempt in (1, 2):
            fd = self.open()
            if fd is None:
                return False
            tmp = f"{TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{name}"
            try:
                _write_file(fd, tmp, chunks)
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
                return True
            except OSError as e:
                with suppress(OSError):
                    os.unlink(tmp, dir_fd=fd)
                if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ESTALE) and attempt == 1:
                    self._lose(fd)          # the folder was deleted: create it again, once
                    continue
                _warn_once(f"write:{errno.errorcode.get(e.errno, e.errno)}",
                           f"cannot write to {self.path}: {e.strerror}; computing without storing")
                return False
        return False

    def _count(self, size: int) -> None:
        max_bytes, max_entries = bounds()
        with self._lock:
            self._since[0] += size
            self._since[1] += 1
            seen_bytes, seen_entries = self._seen or (0, 0)
            due = (self._seen is None or self._since[1] >= PRUNE_EVERY
                   or self._since[0] >= max_bytes // MAX_VALUE_SHARE
                   or seen_bytes + self._since[0] > max_bytes or seen_entries + self._since[1] > max_entries)
            if due:
                self._since = [0, 0]
        if due:
            self.prune()

    def prune(self) -> int:
        """Remove the oldest results while their bytes or number are over `bounds()`, down to 80% of
        both. Returns how many were removed. One process at a time (a lock file); another process
        pruning meanwhile makes this a no-op."""
        import fcntl
        fd = self.open()
        if fd is None:
            return 0
        max_bytes, max_entries = bounds()
        try:
            lock = os.open(PRUNE_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)
        except OSError:
            return 0
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return 0
            found, stale = [], time.time() - 3600
            with os.scandir(fd) as it:
                for entry in it:
                    with suppress(OSError):            # removed by another process meanwhile
                        st = entry.stat(follow_symlinks=False)
                        if entry.name.startswith(ENTRY_PREFIX):
                            found.append((st.st_mtime_ns, st.st_size, entry.name))
                        elif entry.name.startswith(TEMP_PREFIX) and st.st_mtime < stale:
                            os.unlink(entry.name, dir_fd=fd)    # left by a process that died writing
            total, count, removed = sum(s for _, s, _ in found), len(found), 0
            if total > max_bytes or count > max_entries:
                found.sort()
                for _, size, name in found:
                    if total <= 0.8 * max_bytes and count <= 0.8 * max_entries:
                        break
                    with suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=fd)
                        removed += 1
                    total, count = total - size, count - 1
            with self._lock:
                self._seen = (total, count)
            return removed
        finally:
            os.close(lock)

    def clear(self) -> int:
        """Remove every stored result (not the documents). Returns how many."""
        fd = self.open()
        removed = 0
        if fd is not None:
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.name.startswith(ENTRY_PREFIX):
                        with suppress(OSError):
                            os.unlink(entry.name, dir_fd=fd)
                            removed += 1
        with self._lock:
            self._seen = (0, 0)
        return removed


def _read_entry(fd: int, name: str) -> tuple[bytes, bytes]:
    """(tag, payload) of the entry file `name` in the folder fd; Corrupt if not whole."""
    f = _open(name, READ_FLAGS, dir_fd=fd)
    try:
        head = os.read(f, HEADER.size)
        if len(head) != HEADER.size:
            raise Corrupt("shorter than its header")
        magic, tag, size = HEADER.unpack(head)
        if magic != MAGIC or size > MAX_VALUE_BYTES:
            raise Corrupt("not an entry")
        payload = os.read(f, size + 1)       # one byte more: a longer file is not whole either
        while len(payload) < size:
            more = os.read(f, size + 1 - len(payload))
            if not more:
                break
            payload += more
        if len(payload) != size:
            raise Corrupt(f"{len(payload)} bytes, the header says {size}")
        return tag, payload
    finally:
        os.close(f)


def _write_file(dir_fd: int, name: str, chunks) -> None:
    f = _open(name, WRITE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        views = [memoryview(c).cast("B") for c in chunks]
        while views:
            n = _writev(f, views)
            while views and n >= len(views[0]):
                n -= len(views.pop(0))
            if n:
                views[0] = views[0][n:]
    finally:
        os.close(f)


@lru_cache(maxsize=16)
def _store(path: str) -> Store:
    return Store(path)


def store() -> Store:
    """The store of the configured folder (one per folder per process)."""
    return _store(str(folder()))


# --- documents: the data layer's validation reports ---------------------------------------------
def _doc_name(key: str) -> str:
    """A file name for a document key: its safe characters, plus a hash if any were replaced."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", key)[:100]
    if safe != key:
        safe += "-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return DOC_PREFIX + safe + ".json"


def get_doc(key: str) -> dict | None:
    """The JSON document stored under key, or None (missing, unreadable, not a dict, cache off)."""
    if not enabled():
        return None
    doc = store()._get(_doc_name(key))
    return doc if type(doc) is dict else None


def put_doc(key: str, doc: dict) -> None:
    """Store a JSON document under key (atomically); silently nothing if it cannot be written."""
    if not enabled():
        return
    try:
        payload = orjson.dumps(doc)
    except TypeError as e:
        _warn_once("doc", f"a document is not JSON ({e}): not stored")
        return
    store()._write(_doc_name(key), [HEADER.pack(MAGIC, JSON, len(payload)), payload])


# --- keys and the cached() entry point ----------------------------------------------------------
@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the SQL and Python that compute results: a code change never reads old entries."""
    h = hashlib.sha256()
    for p in sorted(list((CODE / "queries").glob("*.sql")) + list((CODE / "dashboard").rglob("*.py"))):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def key(kind: str, snapshot, filters, scope, **options) -> str:
    """The entry's key; ValueError for a snapshot this process has not verified."""
    if not snapshot.fingerprint:
        raise ValueError(f"snapshot {snapshot.snapshot_id} was not verified in this process: no cache key")
    parts = {
        "kind": kind, "code": code_version(), "snapshot": snapshot.fingerprint,
        "filters": filters.to_query(), "scope": scope.key(),
        "options": {k: options[k] for k in sorted(options)},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# keys being computed in this process now -> their lock: concurrent callbacks of one page update
# that need the same result (Safety's three cards read one export) wait for the first to finish
# instead of computing it again. Coordination only: results live in the store, never here.
_inflight: dict[str, threading.Lock] = {}
_inflight_guard = threading.Lock()


def cached(kind: str, snapshot, filters, scope, compute, **options):
    """compute() once per key, across threads, workers and restarts (only for a snapshot verified
    in this process; computed each time otherwise, or with the cache off or broken)."""
    return _cached(kind, snapshot, filters, scope, compute, None, options)


def _cached(kind, snapshot, filters, scope, compute, check, options):
    if not enabled() or not snapshot.fingerprint:
        return compute()
    k = key(kind, snapshot, filters, scope, **options)
    s = store()
    hit = s.get(k, check)
    if hit is not MISS:
        return hit
    with _inflight_guard:
        lock = _inflight.setdefault(k, threading.Lock())
    with lock:
        try:
            hit = s.get(k, check)          # computed by another thread while this one waited
            if hit is not MISS:
                return hit
            value = compute()
            s.set(k, value, kind)
            return value
        finally:
            with _inflight_guard:
                _inflight.pop(k, None)
