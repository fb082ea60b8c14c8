"""Per-version state as files: built once per host, mapped read-only by every process.

A part of a dataset version's state (its locate index, a road network for one profile) is a
folder of ``.npy`` arrays and a ``manifest.json`` under the state directory
(``GEOSERVICE_STATE_DIR``, default ``<data dir>/state``)::

    <state dir>/<name>/manifest.json   metadata, each array's size and SHA-256
    <state dir>/<name>/<array>.npy     opened with ``numpy.load(mmap_mode="r")``
    <state dir>/<name>.build           the builder's lock (``flock``, exclusive)
    <state dir>/<name>.lock            held shared by every process mapping the part

**One builder per host.** A process that needs a part whose folder is missing takes the
part's build lock exclusively, builds it, writes every array into a temporary folder
(``.<name>.<pid>.tmp``), fsyncs each file, reads each back against its checksum, writes the
manifest last and renames the folder to its name. A folder under its name is therefore always
whole: a builder killed halfway leaves only a temporary folder, which the next builder
removes. Processes needing the same part meanwhile wait on the build lock, then map what the
builder wrote.

**One copy in memory.** Every process maps the same files read-only, so the page cache holds one
copy of each, however many servers and workers use it. A process holds the part's lock *shared*
while it maps the folder; ``prune`` removes only folders nobody holds.

A folder's name says which database and which content it holds (``state_key``), so throw-away
test databases and a recreated demo never share folders; ``FORMAT`` is part of every name, so a
new layout is built afresh rather than misread.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

FORMAT = 3
"""Layout of the folders; a change builds every part anew (the name includes it)."""
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Part:
    """What a builder hands over: named arrays and JSON-able metadata."""

    arrays: dict[str, NDArray[Any]]
    meta: dict[str, Any] = field(default_factory=dict)


class MappedPart:
    """A part's folder, mapped: arrays read-only from the page cache, metadata from the manifest.

    The part's lock is held shared until this object is closed or collected, so ``prune`` leaves
    its folder alone meanwhile."""

    def __init__(self, name: str, folder: Path, manifest: dict[str, Any], lock_fd: int) -> None:
        self.name = name
        self.folder = folder
        self.meta: dict[str, Any] = manifest["meta"]
        self.arrays: dict[str, NDArray[Any]] = {
            key: np.load(folder / f"{key}.npy", mmap_mode="r", allow_pickle=False)
            for key in manifest["files"]
        }
        self.bytes = sum(int(entry["bytes"]) for entry in manifest["files"].values())
        self._finalizer = weakref.finalize(self, os.close, lock_fd)

    def __getitem__(self, key: str) -> NDArray[Any]:
        return self.arrays[key]

    def close(self) -> None:
        """Release the shared lock (arrays already handed out stay readable)."""
        self._finalizer()


def state_key(*parts: object) -> str:
    """A short, stable digest of what identifies a part's content."""
    text = "|".join(str(p) for p in (FORMAT, *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StateStore:
    """The state directory of one host: parts by name, built once, mapped by every process."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def open(self, name: str, build: Callable[[], Part]) -> MappedPart:
        """The part ``name``, mapped; built first (by this process, under the part's build
        lock) if no process on this host has built it yet."""
        self.root.mkdir(parents=True, exist_ok=True)
        mapped = self._open_existing(name)
        if mapped is not None:
            return mapped
        with _Lock(self.root / f"{name}.build", exclusive=True):
            if not (self.root / name / MANIFEST).exists():  # nobody built it while we waited
                self._remove_leftovers(name)
                self._write(name, build())
        mapped = self._open_existing(name)
        if mapped is None:  # pruned between the build and the mapping: rare, build again
            return self.open(name, build)
        return mapped

    def names(self) -> list[str]:
        """The parts built on this host."""
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST).is_file())

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Remove the parts not named in ``keep`` that no process maps; returns their names."""
        wanted = set(keep)
        removed = []
        for name in self.names():
            if name in wanted:
                continue
            try:
                with _Lock(self._lock_path(name), exclusive=True, wait=False):
                    doomed = self.root / f".{name}.{os.getpid()}.removed"
                    (self.root / name).rename(doomed)
                    shutil.rmtree(doomed)
                    removed.append(name)
            except BlockingIOError:
                continue  # mapped somewhere
        return removed

    # -- inside ------------------------------------------------------------------------------

    def _lock_path(self, name: str) -> Path:
        return self.root / f"{name}.lock"

    def _open_existing(self, name: str) -> MappedPart | None:
        folder = self.root / name
        if not (folder / MANIFEST).exists():
            return None
        fd = _open_lock_fd(self._lock_path(name), exclusive=False, wait=True)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            for key, entry in manifest["files"].items():
                if (folder / f"{key}.npy").stat().st_size != entry["bytes"]:
                    msg = f"state part {name}: {key}.npy is not the size its manifest gives"
                    raise OSError(msg)
            return MappedPart(name, folder, manifest, fd)
        except FileNotFoundError:  # pruned just now
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise

    def _remove_leftovers(self, name: str) -> None:
        """Temporary folders of builders of ``name`` that died (we hold its lock)."""
        for stale in self.root.glob(f".{name}.*.tmp"):
            log.warning("removing %s, left by a builder that stopped halfway", stale.name)
            shutil.rmtree(stale, ignore_errors=True)

    def _write(self, name: str, part: Part) -> None:
        temporary = self.root / f".{name}.{os.getpid()}.tmp"
        temporary.mkdir()
        files = {}
        for key, array in part.arrays.items():
            path = temporary / f"{key}.npy"
            with open(path, "wb") as out:
                np.save(out, np.ascontiguousarray(array), allow_pickle=False)
                out.flush()
                os.fsync(out.fileno())
            files[key] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        for key, entry in files.items():  # read back what the disk holds
            if _sha256(temporary / f"{key}.npy") != entry["sha256"]:
                msg = f"state part {name}: {key}.npy does not read back as written"
                raise OSError(msg)
        manifest = {"format": FORMAT, "name": name, "meta": part.meta, "files": files}
        path = temporary / MANIFEST
        with open(path, "w") as out:
            json.dump(manifest, out)
            out.flush()
            os.fsync(out.fileno())
        _fsync_dir(temporary)
        temporary.rename(self.root / name)
        _fsync_dir(self.root)


def verify(folder: Path) -> list[str]:
    """The arrays of a part's folder whose contents differ from their manifest's checksum."""
    manifest = json.loads((folder / MANIFEST).read_text())
    return [
        key
        for key, entry in manifest["files"].items()
        if _sha256(folder / f"{key}.npy") != entry["sha256"]
    ]


class _Lock:
    """``flock`` on a lock file, checked to still be the file at its path once held (a lock
    file replaced meanwhile would lock nothing)."""

    def __init__(self, path: Path, *, exclusive: bool, wait: bool = True) -> None:
        self.path, self.exclusive, self.wait = path, exclusive, wait
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.fd = _open_lock_fd(self.path, exclusive=self.exclusive, wait=self.wait)
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self.fd)


def _open_lock_fd(path: Path, *, exclusive: bool, wait: bool) -> int:
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode | (0 if wait else fcntl.LOCK_NB))
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
