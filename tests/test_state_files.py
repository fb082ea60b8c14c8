"""Per-version state files: built once per host, never used half-written, one copy in memory.

The processes here are real ones (``python -c``), sharing one state directory as a server
and its workers do; the builder killed halfway is killed with SIGKILL while it writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import shapely

from geoservice.state import StateCache, VersionState
from geoservice.state_files import Part, StateStore, verify

CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from geoservice.state_files import Part, StateStore

    root, mode = sys.argv[1], sys.argv[2]
    store = StateStore(root)
    data = {"a": np.arange(8 << 20, dtype=np.int64), "b": np.arange(100, dtype=np.int32)}

    def build():
        with open(os.path.join(root, "builds"), "a") as log:
            log.write(f"{os.getpid()}\\n")
        time.sleep(0.5)  # long enough for the other process to wait on the lock
        return Part(data, {"built_by": os.getpid()})

    if mode == "half":  # stop for good after the first array is on disk
        real_save = np.save
        def save_then_hang(file, array, allow_pickle):
            real_save(file, array, allow_pickle=allow_pickle)
            file.flush()
            print("half", flush=True)
            time.sleep(600)
        np.save = save_then_hang
    part = store.open("part", build)
    assert int(part["a"].sum()) == int(data["a"].sum())
    total = int(np.asarray(part["a"]).sum())  # touch every page
    print("ready", part.meta["built_by"], flush=True)
    sys.stdin.readline()  # keep the mapping until told
    """
)


def _child(root: Path, mode: str = "map") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _mapping(pid: int, path: Path) -> dict[str, int]:
    """The smaps figures (kB) of the process's mapping of ``path``."""
    figures: dict[str, int] = {}
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            inside = len(fields) >= 6 and fields[5] == str(path)
        elif inside and fields[0].endswith(":") and fields[1].isdigit():
            figures[fields[0][:-1]] = figures.get(fields[0][:-1], 0) + int(fields[1])
    return figures


def _mapped(array: np.ndarray) -> bool:
    """Whether ``array`` is (a view of) an array mapped from a file, not a copy."""
    while isinstance(array, np.ndarray):
        if isinstance(array, np.memmap):
            return True
        array = array.base
    return False


def test_two_processes_build_once_and_share_one_copy(tmp_path) -> None:
    first, second = _child(tmp_path), _child(tmp_path)
    try:
        lines = [first.stdout.readline().split(), second.stdout.readline().split()]
        assert [line[0] for line in lines] == ["ready", "ready"]
        builds = (tmp_path / "builds").read_text().split()
        assert len(builds) == 1  # one built it, the other waited on the lock and mapped it
        assert lines[0][1] == lines[1][1] == builds[0]
        array = tmp_path / "part" / "a.npy"
        size_kb = array.stat().st_size // 1024
        for child in (first, second):
            figures = _mapping(child.pid, array)
            # every page of the 64 MB array is in memory, and none of it is private
            assert figures["Rss"] >= size_kb - 4
            assert figures["Private_Clean"] + figures["Private_Dirty"] == 0
            assert figures["Shared_Clean"] >= size_kb - 4
    finally:
        for child in (first, second):
            child.communicate("\n", timeout=30)
    assert first.returncode == second.returncode == 0
    assert verify(tmp_path / "part") == []


def test_a_builder_killed_halfway_leaves_nothing_anyone_maps(tmp_path) -> None:
    builder = _child(tmp_path, "half")
    assert builder.stdout.readline().strip() == "half"  # a.npy written, b.npy not yet
    leftovers = list(tmp_path.glob(".part.*.tmp"))
    assert len(leftovers) == 1 and (leftovers[0] / "a.npy").exists()
    store = StateStore(tmp_path)
    assert store.names() == []  # the half-written folder is not a part
    os.kill(builder.pid, signal.SIGKILL)
    builder.communicate(timeout=30)
    assert not (tmp_path / "part").exists()
    # the next process builds it whole (the builder's lock died with it) and clears up
    reader = _child(tmp_path)
    assert reader.stdout.readline().split()[0] == "ready"
    reader.communicate("\n", timeout=30)
    assert reader.returncode == 0
    assert store.names() == ["part"]
    assert list(tmp_path.glob(".part.*.tmp")) == []
    assert (tmp_path / "builds").read_text().split() == [str(builder.pid), str(reader.pid)]
    assert verify(tmp_path / "part") == []


def test_prune_removes_only_parts_nobody_maps(tmp_path) -> None:
    store = StateStore(tmp_path)
    kept = store.open("kept", lambda: Part({"x": np.arange(10)}))
    mapped = store.open("mapped", lambda: Part({"x": np.arange(10)}))
    unused = store.open("unused", lambda: Part({"x": np.arange(10)}))
    unused.close()
    assert store.prune(keep=["kept"]) == ["unused"]
    assert store.names() == ["kept", "mapped"]
    assert int(mapped["x"].sum()) == 45
    mapped.close()
    assert store.prune(keep=["kept"]) == ["mapped"]
    assert int(kept["x"][-1]) == 9


def test_a_version_mapped_from_files_answers_as_one_built_in_memory(
    demo_readonly, tmp_path
) -> None:
    from geoservice.db import create_engine

    engine = create_engine(demo_readonly)
    store = StateStore(tmp_path)
    built = VersionState.build(engine, full=False)
    first = VersionState.build(engine, full=False, store=store)  # builds the files
    mapped = VersionState.build(engine, full=False, store=store)  # maps them
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted(
        [first.files.grids, first.files.locate]
    )
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(114.1, 114.8, 100_000), rng.uniform(22.8, 23.4, 100_000)
    expected = built.index.locate_many(lon, lat)
    for state in (first, mapped):
        batch = state.index.locate_many(lon, lat)
        assert state.index.answers.batch_json(batch) == built.index.answers.batch_json(expected)
    assert isinstance(mapped.index.table.tiles, np.memmap)
    network, from_files = built.network(), mapped.network()
    assert isinstance(from_files.forward_s, np.memmap)
    assert not {"lines", "lines_metric", "tree", "names"} & set(from_files.__dict__)  # not built
    for name in ("edge_ids", "source", "target", "forward_s", "backward_s", "length_m"):
        assert np.array_equal(getattr(network, name), getattr(from_files, name)), name
    assert (network.matrix != from_files.matrix).nnz == 0
    assert shapely.equals_exact(network.lines_metric, from_files.lines_metric, 0).all()
    # the segment and snapping tables and the reversed graph: equal, and mapped, not copied
    reverse, reverse_mapped = network.reversed(), from_files.reversed()
    for ours, theirs in (
        (network.segments, from_files.segments),
        (network.snap_table, from_files.snap_table),
        ((reverse.matrix_edge,), (reverse_mapped.matrix_edge,)),
    ):
        for a, b in zip(ours, theirs, strict=True):
            assert np.array_equal(a, b)
            assert _mapped(b)
    assert (reverse.matrix != reverse_mapped.matrix).nnz == 0
    for matrix in (from_files.matrix, reverse_mapped.matrix):
        assert _mapped(matrix.data) and _mapped(matrix.indices) and _mapped(matrix.indptr)
    assert (network.names == from_files.names).all()
    lon, lat = rng.uniform(114.3, 114.5, 2000), rng.uniform(23.0, 23.2, 2000)
    for ours, theirs in ((network, from_files), (reverse, reverse_mapped)):
        a = ours.snap_points(lon, lat, strict=False)
        b = theirs.snap_points(lon, lat, strict=False)
        for name in ("origin", "edge", "fraction", "lon", "lat", "distance_m"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
    origin = network.snap_points([114.416], [23.111])
    assert np.array_equal(
        network.reach(origin, 300).node_time, from_files.reach(origin, 300).node_time
    )
    # the coverage demand (grids, demand points): mapped, and the same coverage
    whole, from_files = built.coverage().response(), mapped.coverage().response()
    assert np.array_equal(whole.minutes_to_reach, from_files.minutes_to_reach)
    assert whole.nearest_origin == from_files.nearest_origin
    assert whole.to_json() == from_files.to_json()
    assert _mapped(mapped.coverage().demand.edge) and _mapped(mapped.coverage().grids.population)
    assert shapely.equals_exact(
        built.coverage().grids.polygons, mapped.coverage().grids.polygons, tolerance=0
    ).all()  # taken from the mapped locate index, not stored twice
    # the stations and posts placed on the reversed network: mapped, the same placements
    (_, placed), (_, placed_mapped) = built.responders(), mapped.responders()
    assert (placed.kinds, placed.codes, placed.names) == (
        placed_mapped.kinds,
        placed_mapped.codes,
        placed_mapped.names,
    )
    for name in ("origin", "edge", "fraction", "lon", "lat", "distance_m"):
        assert np.array_equal(getattr(placed.snaps, name), getattr(placed_mapped.snaps, name))
        assert _mapped(getattr(placed_mapped.snaps, name))
    # a new current version prunes what no process maps and no kept version needs
    cache = StateCache(engine, full=False, store=store)
    cache.make_current(built.version)
    assert len(store.names()) == 5  # grids' tables, labels, car network, demand, placements
    engine.dispose()


def test_a_version_on_the_same_grids_and_roads_shares_their_parts(
    demo_settings, broken, tmp_path
) -> None:
    """An officers-only publish builds nothing but its labels: the grids' tables, the
    networks, the coverage demand and the responders' placements are the previous
    version's folders, and its answers name its own officers."""
    from geoservice.db import create_engine
    from tests.cli import run_cli

    engine = create_engine(demo_settings, "owner")
    store = StateStore(tmp_path)
    before = VersionState.build(engine, store=store)  # full: coverage and responders too
    built = set(store.names())
    loaded = run_cli(
        "etl", "officers", str(broken["officers_uncovered_unit"]), settings=demo_settings
    )
    assert loaded.returncode == 0, loaded.stderr
    after = VersionState.build(engine, store=store)
    assert after.version == before.version + 1
    assert set(store.names()) - built == {after.files.locate}  # only the new labels
    assert after.files.grids == before.files.grids
    assert after.files.demand("car") == before.files.demand("car")
    assert after.files.responders("car") == before.files.responders("car")
    grid = next(g for g in before.index.grids if g.hierarchy["unit"]["code"] == "441302001001")
    at = before.index.grids.index(grid)
    assert grid.hierarchy["officers"] and after.index.grids[at].hierarchy["officers"] == []
    assert after.index.grids[at].code == grid.code
    assert _mapped(after.index.table.tiles) and _mapped(after.coverage().demand.edge)
    engine.dispose()
