"""The README's shell examples, run: every ```sh block's commands that talk to the service
(``curl …``) or are the CLI (``geoservice …``, GDAL's ``ogrinfo``/``ogr2ogr`` against
``/ogc``) run in README order against a real ``geoservice serve`` on a private copy of the
demo database, and must exit 0 with an answer that parses (JSON where it is JSON, the
files they write in their format); where the README shows the expected output as ``# …``
lines under a command, the answer must have the same keys (JSON) or the same lines
(text, figures aside).

``curl`` runs with ``--fail-with-body``, so an example the service refuses (a ``+`` in a
URL that arrives as a space, a bad body) fails here; a JSON answer that says it ignored or
refused what the example sent (a patrol position older than five minutes) fails too.

What cannot run here is listed in ``SKIPPED`` by its exact text with the reason, and what
must run after the others (the README tells it before what it needs) in ``LATER``; both
lists are checked against the README, so neither can rot.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import TEST_KEYS
from tests.server import serving

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SERVICE = "http://127.0.0.1:8000"
"""The address the README's examples use; replaced by the test server's."""

SKIPPED: dict[str, str] = {
    "make run": "serves in the foreground: the test starts its own server",
    "make test": "runs this test suite",
    "geoservice demo simulate-patrols --minutes 30": "drives the patrols for 30 real minutes",
    "geoservice etl events events.csv": "a register's CSV of your own (tests/test_events.py)",
    "make cluster-up SERVERS=2": "a primary, a standby, servers and HAProxy (test_cluster.py)",
    "make soak MINUTES=10": "ten minutes of locust against make cluster-up",
    "make cluster-down": "stops make cluster-up",
    "geoservice etl boundaries grids_2027.gpkg --layer grid --layer-name grid --dry-run": (
        "a file of your own (tests/test_etl_boundaries.py)"
    ),
    "geoservice diff 1 2 --out edit.gpkg": (
        "needs step 2's edit in QGIS: without it the load publishes nothing, so there is "
        "no version 2 yet (tests/test_round_trip.py edits and diffs)"
    ),
    "geoservice etl population buildings.gpkg": (
        "a buildings file of your own; the demo loaded its population.gpkg"
    ),
    ".venv/bin/pytest tests/test_etl_boundaries.py -k gbk": "runs a test of the suite",
}
"""Example (its text as in the README, comments and line breaks aside) -> why it is not run."""

LATER: dict[str, str] = {
    "geoservice etl bundle /tmp/revisions/split --dry-run": (
        "needs the merge of 'A revision in one go' published, which the README shows below"
    ),
    "geoservice etl bundle /tmp/revisions/split --base 1": "after the split's dry run",
    'curl -X POST -H "Authorization: Bearer $GIS_KEY" http://127.0.0.1:8000/v1/datasets/drafts': (
        "opens a draft (a version): run last, so that the revision examples' version "
        "numbers are those of a fresh demo"
    ),
}
"""Examples run after all the others, in README order, and why."""

REFUSED: dict[str, str] = {
    "geoservice etl bundle /tmp/revisions/split --dry-run": (
        "the README shows it refused (exit 2), naming what it would put back"
    ),
}
"""Examples the README shows refused: they must exit 2 (and print what it shows)."""

OUTPUT_UNCHECKED: dict[str, str] = {
    "geoservice etl bundle /tmp/huicheng.gpkg --dry-run": (
        "the output shown is that after step 2's edit in QGIS"
    ),
}
"""Examples run whose ``# …`` output is not compared, and why."""

TIMEOUT_S = 600


@dataclass
class Example:
    line: int
    """README line of the command's first line."""
    text: str
    """The command as written (continuation lines included)."""
    expected: list[str] = field(default_factory=list)
    """The ``# …`` lines right under it: its expected output."""

    @property
    def key(self) -> str:
        """The command without comments and line breaks: how the lists above name it."""
        lines = [re.sub(r"\s+#\s.*$", "", line).rstrip(" \\") for line in self.text.split("\n")]
        return " ".join(" ".join(lines).split())


def shell_blocks(text: str) -> list[tuple[int, list[str]]]:
    """Every ```sh / ```bash / ```console block: (README line of its first line, its lines,
    dedented)."""
    blocks = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = re.match(r"^( *)```(sh|bash|console)\s*$", lines[i])
        if not match:
            i += 1
            continue
        indent, start, body = len(match.group(1)), i + 2, []
        i += 1
        while not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        blocks.append((start, body))
        i += 1
    return blocks


def _complete(command: str) -> bool:
    if command.endswith("\\"):
        return False
    try:
        shlex.split(command, comments=True)
    except ValueError:  # a quote still open: the command goes on
        return False
    return True


def examples(start: int, body: list[str]) -> list[Example]:
    """A block's commands; the ``#`` lines right under one (no blank line between) are its
    expected output, other ``#`` lines are headings."""
    found: list[Example] = []
    under_command = False
    i = 0
    while i < len(body):
        line = body[i]
        if not line.strip():
            under_command = False
        elif line.lstrip().startswith("#"):
            if under_command:
                found[-1].expected.append(line.lstrip()[1:].strip())
        else:
            first, command = i, line
            while not _complete(command):
                i += 1
                command += "\n" + body[i]
            found.append(Example(start + first, command))
            under_command = True
        i += 1
    return found


def readme_examples() -> list[Example]:
    return [
        example
        for start, body in shell_blocks(README.read_text(encoding="utf-8"))
        for example in examples(start, body)
    ]


def test_lists_name_readme_examples():
    """Every example the lists skip or run later is still in the README, word for word."""
    keys = {example.key for example in readme_examples()}
    named = set(SKIPPED) | set(LATER) | set(REFUSED) | set(OUTPUT_UNCHECKED)
    assert not named - keys, "examples no longer in the README"
    assert not set(SKIPPED) & (set(LATER) | set(REFUSED) | set(OUTPUT_UNCHECKED))


# --- running them ----------------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^([A-Z_]+)=\$\((.+)\)$", re.S)


def _shape(value):
    """A JSON value's keys, nested: what an example's expected output promises."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list) and value:
        return [_shape(value[0])]
    return type(value).__name__ if value is not None else None


BOX = re.compile(r"[\u2500-\u257f]")
"""Box-drawing characters: a table's frame (rich), not its text."""


def _text_matches(expected: list[str], output: str) -> list[str]:
    """The expected lines not found in the output (both as one line: wrapping aside, a
    table's frame aside); figures and ``…`` match anything."""
    missing = []
    got = " ".join(BOX.sub(" ", output).split())
    for line in expected:
        pattern = ""
        for part in re.split(r"(\d[\d,.]*|…|\.\.\.)", " ".join(line.split())):
            if not part:
                continue
            if part in ("…", "..."):
                pattern += ".*"
            elif part[0].isdigit():
                pattern += r"[\d,.]+"
            else:
                pattern += re.escape(part)
        if pattern != ".*" and not re.search(pattern, got):
            missing.append(line)
    return missing


def _files_written(args: list[str]) -> list[str]:
    names = []
    for flag, value in itertools.pairwise(args):
        if flag in ("-o", ">", "--out", "--csv", "--geojson"):
            names.append(value)
    return names


MAGIC = {".pdf": b"%PDF", ".gpkg": b"SQLite format 3", ".xlsx": b"PK"}


def _check_file(path: Path) -> str | None:
    if path.is_dir():
        return None if any(path.iterdir()) else f"{path} is an empty folder"
    if not path.is_file() or path.stat().st_size == 0:
        return f"{path} was not written"
    if path.suffix in (".json", ".geojson"):
        try:
            json.loads(path.read_bytes())
        except ValueError as exc:
            return f"{path} is not JSON: {exc}"
    if path.suffix in MAGIC and not path.read_bytes().startswith(MAGIC[path.suffix]):
        return f"{path} is not a {path.suffix} file"
    return None


def _not_taken(answer) -> str | None:
    """An answer saying the example's data was ignored or refused."""
    if isinstance(answer, dict):
        if answer.get("ignored_too_old"):
            return f"{answer['ignored_too_old']} position(s) ignored as too old"
        if answer.get("refused"):
            return f"refused: {answer['refused']}"
    return None


def _check(
    example: Example, command: str, run: subprocess.CompletedProcess, workdir: Path, scratch: Path
) -> str | None:
    """What is wrong with one example's run (``command``: as it ran), or None."""
    status = 2 if example.key in REFUSED else 0
    if run.returncode != status:
        return (
            f"exit {run.returncode}, not {status}\n"
            f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-3000:]}"
        )
    out = run.stdout.strip()
    words = shlex.split(command.replace("\\\n", " "), comments=True)
    for name in _files_written(words):
        problem = _check_file(workdir / name)
        if problem:
            return problem
    answer = None
    if out[:1] in ("{", "["):
        try:
            answer = json.loads(out)
        except ValueError as exc:
            return f"the answer is not JSON ({exc}): {out[:500]}"
        problem = _not_taken(answer)
        if problem:
            return f"{problem}: {out[:500]}"
    elif words[0] == "curl" and "-o" not in words and not out:
        return "an empty answer"
    if example.expected and example.key not in OUTPUT_UNCHECKED:
        try:
            promised = json.loads(" ".join(example.expected))
        except ValueError:
            expected = [line.replace("/tmp/", f"{scratch}/") for line in example.expected]
            missing = _text_matches(expected, run.stdout + run.stderr)
            if missing:
                return f"expected lines not in the output: {missing}\n{run.stdout}{run.stderr}"
        else:
            if answer is None or _shape(answer).keys() != _shape(promised).keys():
                return f"the answer's keys differ from the README's {promised}: {out[:500]}"
    return None


def test_readme_examples_run(demo_settings, tmp_path):
    work = tmp_path / "work"  # the working directory every example runs in
    (work / ".data").mkdir(parents=True)
    (work / ".data" / "admin.key").write_text(TEST_KEYS["admin"] + "\n")
    scratch = tmp_path / "tmp"  # the README's /tmp
    scratch.mkdir()
    shims = tmp_path / "bin"
    shims.mkdir()
    curl = shims / "curl"
    curl.write_text('#!/bin/sh\nexec /usr/bin/curl --fail-with-body --silent --show-error "$@"\n')
    curl.chmod(0o755)
    url = demo_settings.sqlalchemy_url().render_as_string(hide_password=False)
    env = {
        **os.environ,
        "PATH": f"{shims}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GEOSERVICE_DATABASE_URL": url,
        "GEOSERVICE_DATA_DIR": str(work / ".data"),
        "COLUMNS": "160",  # the CLI's tables and messages wrapped less
    }
    for name in ("GEOSERVICE_API_DATABASE_URL", "GEOSERVICE_ETL_DATABASE_URL"):
        env.pop(name, None)
    all_examples = readme_examples()
    first = [e for e in all_examples if e.key not in SKIPPED and e.key not in LATER]
    later = [e for e in all_examples if e.key in LATER]
    failures, ran, timings = [], 0, []
    with serving(demo_settings, tmp_path) as server:
        for example in first + later:
            command = example.text.replace(SERVICE, server.url).replace("/tmp/", f"{scratch}/")
            assignment = ASSIGNMENT.match(re.sub(r"\s+#\s.*$", "", command.strip()))
            script = assignment.group(2) if assignment else command
            started = time.monotonic()
            run = subprocess.run(
                ["bash", "-o", "pipefail", "-c", script],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
            ran += 1
            timings.append((time.monotonic() - started, example.line, example.key))
            problem = _check(example, command, run, work, scratch)
            if problem:
                failures.append(f"README.md:{example.line}: {example.text}\n  {problem}")
            elif assignment:
                env[assignment.group(1)] = run.stdout.strip().splitlines()[-1]
    for seconds, line, key in sorted(timings, reverse=True)[:10]:
        print(f"{seconds:6.1f} s  README.md:{line}: {key[:100]}")
    assert not failures, f"{len(failures)} of {ran} README examples failed:\n\n" + "\n\n".join(
        failures
    )


def test_checks_catch_what_the_issue_found(tmp_path):
    """The checks fail the examples #21 found broken: a time with ``+`` in a URL (a 422,
    so curl --fail-with-body exits 22) and a patrol position ignored as too old (a 200)."""
    as_of = Example(
        1, "curl 'http://127.0.0.1:8000/v1/events/overdue?as_of=2021-01-10T00:00:00+08:00'"
    )
    refused = subprocess.CompletedProcess([], 22, '{"status":422}', "curl: (22) ... 422")
    assert "exit 22" in (_check(as_of, as_of.text, refused, tmp_path, tmp_path) or "")
    post = Example(2, "curl -X POST http://127.0.0.1:8000/v1/patrols/positions -d '{}'")
    stale = '{"recorded":0,"ignored_too_old":1,"max_age_s":300,"refused":[]}'
    ran = subprocess.CompletedProcess([], 0, stale, "")
    assert "too old" in (_check(post, post.text, ran, tmp_path, tmp_path) or "")
    kept = '{"recorded":1,"ignored_too_old":0,"max_age_s":300,"refused":[]}'
    taken = subprocess.CompletedProcess([], 0, kept, "")
    assert _check(post, post.text, taken, tmp_path, tmp_path) is None
    health = Example(
        3, "curl http://127.0.0.1:8000/health", ['{"status":"ok","dataset_version":1}']
    )
    other = subprocess.CompletedProcess([], 0, '{"status":"ok"}', "")
    assert "keys differ" in (_check(health, health.text, other, tmp_path, tmp_path) or "")
