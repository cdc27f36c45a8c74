"""Run every command of the README's tour and of docs/tutorial.md on MovieLens 100K, in a
temporary directory, and check the outputs the documents show (or rewrite them).

    python scripts/check_docs.py               # run everything, compare every shown output
    python scripts/check_docs.py --run-only    # only check that every command succeeds
    python scripts/check_docs.py --regenerate  # rewrite the outputs that differ, in place

What is run: every command of a fenced block in the README's tour and Python API sections and
in the whole tutorial — ```bash blocks (commands without output), transcript blocks (``$ cmd``
lines, each followed by the output the document shows) and ```python blocks — in the order the
documents give them, both documents in one directory (the tutorial's workspace is the README's
default one), with ``examples/`` copied in. BigQuery ML SQL is not run. Not run, and listed as
skipped: ``pip install`` and ``apt-get`` (the check runs in the installed environment), and the
report screenshot without a Chromium. ``hybridrec serve`` is started on a free port, checked
to answer ``/healthz``, and stopped. A command repeated with the same arguments (the tutorial
repeats the README's) is run again, except ``train``, ``evaluate`` and ``compare``: their
results only depend on the data and the models, which are the same both times. ``hybridrec
compare`` (the slowest, minutes: it trains every model on three splits) is run once, with
``--format csv``, for both the commands and the README's table of its results.

How outputs are compared: Rich tables cell by cell (whitespace and wrapping ignored), other
lines word by word, after writing the run directory as ``/home/you/tutorial`` and the home
directory as ``/home/you``. Everything else must match exactly: the commands are seeded, so a
rerun prints the same numbers. The tolerances, and why:

* timing: ``duration_ms`` and ``seconds`` columns, and ``seconds`` rows (wall-clock time);
* environment: the ``source`` and ``layout`` rows of ``load`` (GroupLens' zip when online, the
  RecBole wheel offline) and the warning that GroupLens cannot be reached;
* random: a query that calls SQL ``random()`` (the notebook's fake ``loyalty``): only its
  header and first column are compared.

The README's ``compare`` table is checked the same way against ``hybridrec compare``.
Exit code 0 when everything ran and matched (or was rewritten), 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TUTORIAL = ROOT / "docs" / "tutorial.md"
SHOWN_DIR = "/home/you/tutorial"  # the directory the documents' outputs were produced in
SHOWN_HOME = "/home/you"
README_SCOPE = ("## A five-minute tour", "## The matrix factorization model")
TIMING_COLUMNS = {"duration_ms", "seconds"}
TIMING_ROWS = {"seconds"}
ENVIRONMENT_ROWS = {"source", "layout"}
ENVIRONMENT_LINES = re.compile(r"^WARNING hybridrec\.data\._sources: cannot download ")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SKIPPED = (
    (re.compile(r"^pip install "), "installs packages: the check runs in the installed one"),
    (re.compile(r"^apt-get "), "installs a system package"),
)
NEEDS_BROWSER = re.compile(r"^(chromium |python scripts/screenshot_report\.py )")
FENCE = re.compile(r"^```(\w*)\s*$")
COMPARE_HEADER = "| scenario | model | RMSE | MAE | r2 | precision@10 | NDCG@10 |"
COMPARE_CSV = ("hybridrec", "compare", "--format", "csv")
# Repeated with the same arguments, these are run once: they only read the ratings (reloaded
# unchanged by the tutorial) and write models, which a second run would rewrite identically.
SLOW = {("hybridrec", "train"), ("hybridrec", "evaluate"), ("hybridrec", "compare")}
COMMAND_TIMEOUT = 1800


@dataclass
class Step:
    """One command of a document and the output the document shows for it, if any."""

    doc: Path
    line: int  # 1-based, of the command
    text: str
    python: bool = False
    shown: list[str] | None = None
    shown_at: tuple[int, int] | None = None  # 0-based [start, stop) lines of that output

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


# ---------------------------------------------------------------------- reading the documents
def _complete(command: str) -> bool:
    """Whether ``command`` is a whole shell command (quotes closed, no trailing backslash)."""
    if command.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return False
    return True


def _scope(doc: Path, lines: list[str]) -> tuple[int, int]:
    if doc != README:
        return 0, len(lines)
    start, stop = (
        next(i for i, line in enumerate(lines) if line.startswith(heading))
        for heading in README_SCOPE
    )
    return start, stop


def parse(doc: Path) -> list[Step]:
    """The steps of ``doc``'s fenced blocks, in order."""
    lines = doc.read_text(encoding="utf-8").split("\n")
    start, stop = _scope(doc, lines)
    steps: list[Step] = []
    i = start
    while i < stop:
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        steps += _block(doc, fence.group(1), lines, i + 1, end)
        i = end + 1
    return steps


def _block(doc: Path, lang: str, lines: list[str], a: int, b: int) -> list[Step]:
    if lang == "python":
        return [Step(doc, a + 1, "\n".join(lines[a:b]), python=True)]
    if any(line.startswith("$ ") for line in lines[a:b]):
        return _transcript(doc, lines, a, b)
    if lang not in ("bash", "sh"):
        return []  # BigQuery ML SQL, formulas, outputs of the command before
    steps, i = [], a
    while i < b:
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        first, command = i, lines[i]
        while not _complete(command) and i + 1 < b:
            i += 1
            command += "\n" + lines[i]
        steps.append(Step(doc, first + 1, command))
        i += 1
    return steps


def _transcript(doc: Path, lines: list[str], a: int, b: int) -> list[Step]:
    """``$ command`` lines, each followed by the output shown for it (up to the next ``$``)."""
    steps, i = [], a
    while i < b:
        if not lines[i].startswith("$ "):
            i += 1
            continue
        first, command = i, lines[i][2:]
        while not _complete(command) and i + 1 < b:
            i += 1
            command += "\n" + lines[i]
        out_start = i + 1
        out_stop = next((j for j in range(out_start, b) if lines[j].startswith("$ ")), b)
        shown = lines[out_start:out_stop]
        steps.append(Step(doc, first + 1, command, shown=shown, shown_at=(out_start, out_stop)))
        i = out_stop
    return steps


# ---------------------------------------------------------------------- comparing outputs
def _cells(line: str, bar: str) -> list[str]:
    return [re.sub(r"\s+", "", cell) for cell in line.strip()[1:-1].split(bar)]


def _merge(rows: list[list[str]], cells: list[str]) -> None:
    """A row whose first cell is empty continues the row above (Rich wrapped a cell)."""
    if rows and not cells[0] and len(cells) == len(rows[-1]):
        rows[-1] = [old + new for old, new in zip(rows[-1], cells, strict=True)]
    else:
        rows.append(cells)


def normalise(lines: list[str], paths: dict[str, str], random: bool) -> list[str]:
    """The comparable content of an output: one entry per table row (cells without
    whitespace, volatile cells as ``*``) or per other line (words)."""
    items: list[str] = []
    header: list[list[str]] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if not header:
            return
        names = ["".join(parts) for parts in zip(*header, strict=True)] if header else []
        names = header[0] if len(header) == 1 else names
        items.append("table: " + " | ".join(names))
        for row in rows:
            cells = [
                "*" if name in TIMING_COLUMNS or (random and c > 0) else cell
                for c, (name, cell) in enumerate(zip(names, row, strict=False))
            ]
            if cells and cells[0] in TIMING_ROWS | ENVIRONMENT_ROWS:
                cells[1:] = ["*"] * (len(cells) - 1)
            items.append("row: " + " | ".join(cells))
        header.clear()
        rows.clear()

    for raw in lines:
        line = raw
        for real, shown in paths.items():
            line = line.replace(real, shown)
        text = line.strip()
        if not text or text[0] in "┏┡└" or ENVIRONMENT_LINES.match(text):
            continue
        if text[0] == "┃":
            _merge(header, _cells(text, "┃"))
        elif text[0] == "│":
            _merge(rows, _cells(text, "│"))
        else:
            flush()
            items.append(" ".join(text.split()))
    flush()
    return items


# ---------------------------------------------------------------------- running
@dataclass
class Result:
    code: int
    output: str
    seconds: float
    skipped: str | None = None


class Runner:
    """Runs steps in one directory with one environment, like a user's shell would."""

    def __init__(self, work: Path) -> None:
        self.work = work
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.pop("HYBRIDREC_WORKSPACE", None)  # the README uses the default ./hybridrec-workspace
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as on a terminal
        env["PWD"] = str(work)
        self.env = env
        self.memo: dict[tuple[str, ...], Result] = {}

    def run(self, step: Step) -> Result:
        if step.python:
            script = self.work / "_snippet.py"
            script.write_text(step.text, encoding="utf-8")
            return self._process([sys.executable, str(script)])
        command = step.text.strip()
        for pattern, reason in SKIPPED:
            if pattern.match(command):
                return Result(0, "", 0.0, skipped=reason)
        if NEEDS_BROWSER.match(command) and not _browser():
            return Result(0, "", 0.0, skipped="needs Chromium (none found)")
        export = re.fullmatch(r"export (\w+)=(\S+)(\s+#.*)?", command)
        if export:
            self.env[export.group(1)] = _expand(export.group(2), self.env)
            return Result(0, "", 0.0)
        if command.startswith("hybridrec serve "):
            return self._serve(command)
        key = tuple(shlex.split(command, comments=True))
        if key == ("hybridrec", "compare"):  # minutes: run once, as the README's table needs it
            key, command = COMPARE_CSV, " ".join(COMPARE_CSV)
        if key[:2] not in SLOW:
            return self._process(["bash", "-c", command])
        if key not in self.memo:
            self.memo[key] = self._process(["bash", "-c", command])
        return self.memo[key]

    def _process(self, argv: list[str]) -> Result:
        started = time.perf_counter()
        done = subprocess.run(
            argv,
            cwd=self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        return Result(done.returncode, done.stdout, time.perf_counter() - started)

    def _serve(self, command: str) -> Result:
        """Start the server on a free port, wait for ``/healthz``, stop it (SIGTERM)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        argv = [*shlex.split(command, comments=True), "--port", str(port)]
        started = time.perf_counter()
        server = subprocess.Popen(
            argv, cwd=self.work, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        healthy = False
        try:
            while not healthy and server.poll() is None and time.perf_counter() - started < 120:
                try:
                    url = f"http://127.0.0.1:{port}/healthz"
                    with urllib.request.urlopen(url, timeout=2) as response:
                        healthy = response.status == 200
                except OSError:
                    time.sleep(0.5)
        finally:
            server.send_signal(signal.SIGTERM)
            output = server.communicate(timeout=60)[0].decode(errors="replace")
        note = "" if healthy else "\n(the server never answered /healthz)"
        return Result(0 if healthy else 1, output + note, time.perf_counter() - started)


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def _browser() -> bool:
    return bool(os.environ.get("CHROMIUM")) or any(shutil.which(b) for b in BROWSERS)


# ---------------------------------------------------------------------- the compare table
def compare_table_rows(lines: list[str]) -> tuple[int, int]:
    """[start, stop) of the body rows of the README's ``compare`` table."""
    head = lines.index(COMPARE_HEADER)
    stop = next(j for j in range(head + 2, len(lines)) if not lines[j].startswith("|"))
    return head + 2, stop


def compare_rows(shown: list[str], csv_text: str) -> list[str]:
    """The README's ``compare`` rows with the numbers of ``hybridrec compare --format csv``,
    each at the precision shown. A row's label names its models ("MF (μ + movie intercept)"
    is the model ``MF``; "hybrid linear / boosted / dnn (…)" three models, which must agree at
    that precision) and is kept."""
    import io

    import pandas as pd

    frame = pd.read_csv(io.StringIO(csv_text))
    frame = frame.set_index([frame["scenario"], frame["model"]])
    rows = []
    for line in shown:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        scenario, label, values = cells[0], cells[1], cells[2:]
        base = re.sub(r" \(.*\)$", "", label)
        first, *others = base.split(" / ")
        models = [first] + [f"{first.split()[0]} {other}" for other in others]
        numbers = set()
        for model in models:
            row = frame.loc[(scenario, model)]
            numbers.add(
                tuple(
                    "" if pd.isna(value) else _fixed(float(value), _decimals(shown_value))
                    for value, shown_value in zip(row.iloc[2:], values, strict=True)
                )
            )
        if len(numbers) > 1:  # the models of one row disagree: show every version
            numbers = {tuple(" / ".join(v) for v in zip(*sorted(numbers), strict=True))}
        cells = [scenario, label, *numbers.pop()]
        rows.append("|" + "|".join(f" {c} " if c else " " for c in cells) + "|")
    return rows


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.000"


def _decimals(shown: str) -> int:
    shown = shown.strip("*")
    return len(shown.split(".")[1]) if "." in shown else 4


# ---------------------------------------------------------------------- the whole check
def _report(step: Step, result: Result, paths: dict[str, str], regenerate: bool) -> str:
    """ "ok", "skipped", "failed", "differs" or "rewritten", with the details printed."""
    if result.skipped:
        return "skipped"
    if result.code != 0:
        print(f"FAILED  {step.where} (exit {result.code}): {step.text.splitlines()[0]}")
        print("    " + "\n    ".join(result.output.rstrip().splitlines()[-15:]))
        return "failed"
    if step.shown is None:
        return "ok"
    random = "random()" in step.text
    actual = result.output.rstrip("\n").split("\n")
    want = normalise(step.shown, {}, random)
    got = normalise(actual, paths, random)
    if want == got:
        return "ok"
    if regenerate:
        return "rewritten"
    print(f"DIFFERS {step.where}: {step.text.splitlines()[0]}")
    diff = difflib.unified_diff(want, got, "shown", "actual", lineterm="", n=1)
    print("    " + "\n    ".join(list(diff)[:40]))
    return "differs"


def _shown_output(result: Result, paths: dict[str, str]) -> list[str]:
    text = result.output.rstrip("\n")
    for real, shown in paths.items():
        text = text.replace(real, shown)
    return [line.rstrip() for line in text.split("\n") if not ENVIRONMENT_LINES.match(line.strip())]


def _rewrite(doc: Path, replacements: list[tuple[tuple[int, int], list[str]]]) -> None:
    lines = doc.read_text(encoding="utf-8").split("\n")
    for (start, stop), new in sorted(replacements, reverse=True):
        lines[start:stop] = new
    doc.write_text("\n".join(lines), encoding="utf-8")


def _check_compare_table(runner: Runner, regenerate: bool) -> str:
    result = runner.run(Step(README, 0, " ".join(COMPARE_CSV)))
    if result.code != 0:
        print(f"FAILED  README compare table (exit {result.code}): {result.output[-2000:]}")
        return "failed"
    lines = README.read_text(encoding="utf-8").split("\n")
    start, stop = compare_table_rows(lines)
    actual = compare_rows(lines[start:stop], result.output)
    if lines[start:stop] == actual:
        return "ok"
    if regenerate:
        _rewrite(README, [((start, stop), actual)])
        return "rewritten"
    print("DIFFERS README compare table:")
    diff = difflib.unified_diff(lines[start:stop], actual, "shown", "actual", lineterm="", n=0)
    print("    " + "\n    ".join(diff))
    return "differs"


def check(work: Path, *, run_only: bool, regenerate: bool) -> dict[str, int]:
    """Run every step of both documents in ``work``; count the outcomes."""
    runner = Runner(work)
    shutil.copytree(ROOT / "examples", work / "examples")
    paths = {str(work): SHOWN_DIR, str(Path.home()): SHOWN_HOME}
    counts: dict[str, int] = {}
    started = time.perf_counter()
    for doc in (README, TUTORIAL):
        rewrites = []
        for step in parse(doc):
            result = runner.run(step)
            outcome = _report(step, result, paths, regenerate)
            if run_only and outcome == "differs":
                outcome = "ok"
            if outcome == "rewritten" and step.shown_at is not None:
                rewrites.append((step.shown_at, _shown_output(result, paths)))
            counts[outcome] = counts.get(outcome, 0) + 1
            note = f": {result.skipped}" if result.skipped else ""
            print(f"  {outcome:9} {result.seconds:6.1f} s  {step.where}{note}", flush=True)
        if rewrites:
            _rewrite(doc, rewrites)
    if not run_only:
        outcome = _check_compare_table(runner, regenerate)
        counts[outcome] = counts.get(outcome, 0) + 1
    counts["seconds"] = round(time.perf_counter() - started)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--run-only", action="store_true", help="only check that commands succeed")
    mode.add_argument("--regenerate", action="store_true", help="rewrite outputs that differ")
    parser.add_argument("--keep", type=Path, help="run in this (new) directory and keep it")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True)
        counts = check(args.keep.resolve(), run_only=args.run_only, regenerate=args.regenerate)
    else:
        with tempfile.TemporaryDirectory(prefix="hybridrec-docs-") as tmp:
            work = Path(tmp) / "tutorial"
            work.mkdir()
            counts = check(work, run_only=args.run_only, regenerate=args.regenerate)
    print(", ".join(f"{n} {what}" for what, n in counts.items()))
    return 1 if counts.get("failed") or counts.get("differs") else 0


if __name__ == "__main__":
    sys.exit(main())
