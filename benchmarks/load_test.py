"""Load test of the HTTP API: latency percentiles and throughput at a fixed request rate.

Starts ``hybridrec serve`` in a subprocess on a free loopback port, on a private copy of the
model (a temporary workspace, so nothing of yours is touched), then drives it from this process
with a minimal keep-alive HTTP/1.1 client on asyncio streams (httpx costs about 2 ms of CPU
per request, which on a small machine is taken from the server under test), open loop:
request ``i`` is due at ``t0 + i / rate`` whether or not earlier ones have been answered, so a
slow server shows up as latency, not as a lower request rate; at most ``--connections``
requests are in flight, later ones wait their turn.
Every response is checked (status 200, a JSON body with the asked number of items). With
``--reload`` the model is reloaded through ``POST /admin/reload`` in the middle of the run and
the check covers the requests in flight during the swap; ``--swap-to DIR`` first saves another
model over the served copy, so that the reload really changes the model.

    python benchmarks/load_test.py --model-path DIR [--rate 200] [--requests 6000] [--reload]
    python benchmarks/load_test.py --model-path DIR --reload --swap-to OTHER_MODEL_DIR
    python benchmarks/load_test.py --workspace WS --name NAME [--workers 2] [--genre Comedy]

Writes ``benchmarks/results/<--out>.json`` (default ``load_test.json``, with the machine's
description). ``latency_ms`` runs from sending a request to reading its body;
``latency_from_schedule_ms`` from the moment it was due (so it includes waiting for a free
connection or a late client); ``server_ms`` is the server's own time to the response headers
(``server-timing``). CPU seconds of the server process(es) and of this client are recorded,
because on a shared machine both compete for the same cores. Exit code 1 if any request
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pyarrow.parquet as pq
from _common import write_result

TOKEN_ENV = "HYBRIDREC_LOADTEST_TOKEN"
SERVED_NAME = "loadtest"
MAX_DURATION = 60.0


@dataclass
class Outcome:
    scheduled: float
    sent: float
    done: float = 0.0
    status: int | None = None
    error: str | None = None
    version: str | None = None
    server_ms: float | None = None


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    reloads: list[dict[str, Any]] = field(default_factory=list)
    cpu: dict[str, float | None] = field(default_factory=dict)


def cpu_seconds(root_pid: int) -> float | None:
    """CPU time (user + system) used so far by a process and its children (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    except OSError:
        return None
    family = {root_pid}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in stats.items() if ppid in family} - family
        family |= more
        grew = bool(more)
    for pid in family:
        if pid in stats:
            total += stats[pid][1] / ticks
    return total


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_location(args: argparse.Namespace) -> Path:
    if args.model_path is not None:
        return Path(args.model_path)
    from hybridrec.models import model_dir
    from hybridrec.workspace import Workspace

    return model_dir(Workspace(args.workspace).models_dir, args.name)


def server_command(args: argparse.Namespace, workspace: Path, port: int) -> list[str]:
    """`hybridrec serve` on a private workspace holding a copy of the model."""
    return [
        sys.executable,
        "-m",
        "hybridrec.cli",
        "--workspace",
        str(workspace),
        "serve",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--admin-token-env",
        TOKEN_ENV,
    ]


def place(source: Path, target: Path) -> None:
    """Put a copy of model directory ``source`` at ``target`` the way a save does: written
    beside it, then renamed into place."""
    incoming = target.parent / f".{target.name}.incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    shutil.copytree(source, incoming)
    if target.exists():
        old = target.parent / f".{target.name}.old"
        os.rename(target, old)
        os.rename(incoming, target)
        shutil.rmtree(old)
    else:
        os.rename(incoming, target)


async def wait_ready(base: str, proc: subprocess.Popen[bytes], limit: float = 180.0) -> float:
    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while time.perf_counter() - start < limit:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with code {proc.returncode} while starting")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return time.perf_counter() - start
            await asyncio.sleep(0.2)
    raise SystemExit(f"the server did not answer /healthz within {limit:.0f} s")


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Connections:
    """A pool of persistent HTTP/1.1 connections to one host; ``get`` takes a free one.

    Just enough HTTP for uvicorn's answers to ``GET`` (a status line, headers, a body of
    ``content-length`` bytes); anything else fails the request with a clear error.
    """

    def __init__(self, host: str, port: int, size: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.free: asyncio.LifoQueue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]
        self.free = asyncio.LifoQueue()
        for _ in range(size):
            self.free.put_nowait(None)  # opened on first use

    async def get(self, target: str, on_sent: Callable[[], None] | None = None) -> RawResponse:
        """``GET target``; ``on_sent`` is called once a connection is free (the request leaves)."""
        conn = await self.free.get()
        if on_sent is not None:
            on_sent()
        try:
            if conn is not None:
                try:
                    response = await asyncio.wait_for(self._exchange(conn, target), self.timeout)
                except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                    # The server closed an idle keep-alive connection before this request
                    # reached it (uvicorn does after 5 s): retry once on a new connection,
                    # as HTTP clients do. A partial answer is a real failure.
                    if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                        raise
                    conn[1].close()
                    conn = None
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port)
                response = await asyncio.wait_for(self._exchange(conn, target), self.timeout)
        except BaseException:
            if conn is not None:
                conn[1].close()
            self.free.put_nowait(None)
            raise
        keep = response.headers.get("connection", "").lower() != "close"
        if not keep:
            conn[1].close()
        self.free.put_nowait(conn if keep else None)
        return response

    async def _exchange(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], target: str
    ) -> RawResponse:
        reader, writer = conn
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise ConnectionError(f"status {status} without content-length")
        body = await reader.readexactly(int(headers["content-length"]))
        return RawResponse(status, headers, body)

    async def close(self) -> None:
        while not self.free.empty():
            conn = self.free.get_nowait()
            if conn is not None:
                conn[1].close()


def now() -> float:
    return time.perf_counter()


def check(response: RawResponse, n: int, genre: str | None) -> str | None:
    """Why a /recommend response is wrong, or None."""
    if response.status_code != 200:
        return f"status {response.status_code}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return "body is not JSON"
    items = body.get("items")
    if not isinstance(items, list) or (len(items) != n and genre is None) or len(items) > n:
        return f"expected {n} items, got {items if not isinstance(items, list) else len(items)}"
    return None


async def drive(
    args: argparse.Namespace,
    base: str,
    users: np.ndarray,
    token: str,
    server_pid: int,
    served: Path,
    sources: list[Path],
) -> Run:
    run = Run()
    rng = np.random.default_rng(args.seed)
    total = min(args.requests, int(args.rate * args.duration))
    unknown = rng.random(total) < args.unknown_fraction
    picks = users[rng.integers(0, users.size, total)]
    unknown_id = int(users.max()) + 1_000_000
    reload_at = {int(total * (k + 1) / (args.reloads + 1)) for k in range(args.reloads)}
    suffix = f"&n={args.n}" + (f"&genre={quote(args.genre)}" if args.genre else "")
    urls = [
        f"/recommend?user={unknown_id + i if unknown[i] else int(picks[i])}{suffix}"
        for i in range(total)
    ]
    # At most `connections` requests in flight; the others wait for a free connection. Their
    # wait counts in `latency_from_schedule`.
    host, port = base.removeprefix("http://").rsplit(":", 1)
    client = Connections(host, int(port), args.connections, args.timeout)
    admin = httpx.AsyncClient(base_url=base, timeout=120.0)
    async with admin:

        async def one(i: int, scheduled: float) -> None:
            outcome = Outcome(scheduled=scheduled, sent=0.0)
            run.outcomes.append(outcome)
            await request(outcome, urls[i])
            outcome.done = time.perf_counter()

        async def request(outcome: Outcome, url: str) -> None:
            try:
                response = await client.get(url, lambda: setattr(outcome, "sent", now()))
                outcome.status = response.status_code
                outcome.error = check(response, args.n, args.genre)
                outcome.version = response.headers.get("x-model-version")
                timing = response.headers.get("server-timing", "")
                if "dur=" in timing:
                    outcome.server_ms = float(timing.split("dur=", 1)[1].split(";")[0])
            except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"

        async def reload(k: int) -> None:
            if args.swap_to is not None:  # save another model over the served one first
                await asyncio.to_thread(place, sources[k % len(sources)], served)
            start = time.perf_counter()
            response = await admin.post(
                "/admin/reload", headers={"Authorization": f"Bearer {token}"}
            )
            run.reloads.append(
                {
                    "status": response.status_code,
                    "body": response.json() if response.status_code == 200 else response.text,
                    "start": start,
                    "end": time.perf_counter(),
                }
            )

        for _ in range(min(50, total)):  # warm-up: connections, thread pool; not recorded
            await client.get(f"/recommend?user={int(users[0])}&n={args.n}")
        tasks: list[asyncio.Task[None]] = []
        server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
        t0 = time.perf_counter()
        for i in range(total):
            scheduled = t0 + i / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() - t0 > args.duration:
                break
            tasks.append(asyncio.create_task(one(i, scheduled)))
            if i in reload_at:
                tasks.append(asyncio.create_task(reload(len(run.reloads))))
        await asyncio.gather(*tasks)
        server_end = cpu_seconds(server_pid)
        run.cpu = {
            "server_cpu_seconds": None
            if server_cpu is None or server_end is None
            else round(server_end - server_cpu, 3),
            "client_cpu_seconds": round(time.process_time() - client_cpu, 3),
        }
    await client.close()
    return run


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p95": None, "p99": None, "max": None}
    arr = np.asarray(values)
    p50, p90, p95, p99 = np.percentile(arr, [50, 90, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p90": round(float(p90), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(arr.max()), 3),
    }


def summarise(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    outcomes = run.outcomes
    ok = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    first = min(o.sent for o in outcomes)
    last = max(o.done for o in outcomes)
    statuses: dict[str, int] = {}
    for o in outcomes:
        key = str(o.status) if o.status is not None else "no response"
        statuses[key] = statuses.get(key, 0) + 1
    reloads = []
    for r in run.reloads:
        overlapping = [o for o in outcomes if o.scheduled < r["end"] and o.done > r["start"]]
        reloads.append(
            {
                "status": r["status"],
                "result": r["body"],
                "seconds_into_run": round(r["start"] - first, 3),
                "wall_ms": round((r["end"] - r["start"]) * 1000, 3),
                "requests_in_flight_during_reload": len(overlapping),
                "failed_during_reload": sum(o.error is not None for o in overlapping),
                "latency_ms_during_reload": percentiles(
                    [(o.done - o.sent) * 1000 for o in overlapping]
                ),
            }
        )
    return {
        "requests": len(outcomes),
        "succeeded": len(ok),
        "failed": len(failed),
        "status_counts": statuses,
        "failures": [
            {"at_s": round(o.sent - first, 3), "status": o.status, "error": o.error}
            for o in failed[:50]
        ],
        "wall_seconds": round(last - first, 3),
        "achieved_rate_per_s": round(len(outcomes) / (last - first), 1),
        "throughput_ok_per_s": round(len(ok) / (last - first), 1),
        "latency_ms": percentiles([(o.done - o.sent) * 1000 for o in outcomes if o.done]),
        "latency_from_schedule_ms": percentiles(
            [(o.done - o.scheduled) * 1000 for o in outcomes if o.done]
        ),
        "server_ms": percentiles([o.server_ms for o in outcomes if o.server_ms is not None]),
        "model_versions_seen": sorted({o.version for o in outcomes if o.version}),
        **run.cpu,
        "server_cpu_ms_per_request": None
        if run.cpu.get("server_cpu_seconds") is None
        else round(1000 * run.cpu["server_cpu_seconds"] / len(outcomes), 3),
        "client_cpu_ms_per_request": round(
            1000 * (run.cpu.get("client_cpu_seconds") or 0.0) / len(outcomes), 3
        ),
        "load_average_at_end": os.getloadavg(),
        "reloads": reloads,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-path", help="a saved model directory")
    where.add_argument("--workspace", help="a workspace (with --name)")
    parser.add_argument("--name", help="model name in --workspace")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--requests", type=int, default=6000, help="at most this many")
    parser.add_argument("--duration", type=float, default=30.0, help=f"seconds, ≤ {MAX_DURATION}")
    parser.add_argument("--reload", action="store_true", help="reload the model mid-run")
    parser.add_argument("--reloads", type=int, default=None, help="how many reloads (--reload: 1)")
    parser.add_argument(
        "--swap-to",
        help="a second model directory: each reload first saves it (then the original, "
        "alternately) over the served copy, so the reload really changes the model",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--n", type=int, default=10, help="items per recommendation")
    parser.add_argument("--genre", help="ask for this genre only")
    parser.add_argument("--unknown-fraction", type=float, default=0.05, help="cold-start users")
    parser.add_argument("--connections", type=int, default=16, help="requests in flight, at most")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="load_test", help="results/<OUT>.json")
    args = parser.parse_args()
    if args.workspace is not None and args.name is None:
        parser.error("--workspace needs --name")
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in (0, {MAX_DURATION:.0f}] seconds")
    if args.rate <= 0 or args.requests < 1:
        parser.error("--rate and --requests must be positive")
    args.reloads = args.reloads if args.reloads is not None else (1 if args.reload else 0)
    return args


def main() -> int:
    args = parse_args()
    path = model_location(args)
    users = pq.read_table(path / "users.parquet", columns=["userId"])["userId"].to_numpy()
    meta = json.loads((path / "meta.json").read_text())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(24)
    env = {**os.environ, TOKEN_ENV: token}
    sources = [Path(args.swap_to), path] if args.swap_to else [path]
    with tempfile.TemporaryDirectory(prefix="hybridrec-load-") as tmp:
        workspace = Path(tmp) / "ws"
        served = workspace / "models" / SERVED_NAME
        served.parent.mkdir(parents=True)
        place(path, served)
        cmd = server_command(args, workspace, port)
        out_log, err_log = Path(tmp) / "stdout.log", Path(tmp) / "stderr.log"
        with out_log.open("wb") as out, err_log.open("wb") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
            try:
                startup = asyncio.run(wait_ready(base, proc))
                run = asyncio.run(drive(args, base, users, token, proc.pid, served, sources))
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
        access = [
            json.loads(line) for line in out_log.read_text().splitlines() if line.startswith("{")
        ]
        server_errors = err_log.read_text().splitlines()[-20:]
    summary = summarise(run, args)
    recommend_log = [a for a in access if a.get("path") == "/recommend"]
    result = {
        "server": {
            "command": " ".join(["hybridrec", *cmd[3:]]).replace(str(workspace), "<copy>"),
            "workers": args.workers,
            "startup_seconds": round(startup, 3),
            "exit_code_after_sigterm": code,
            "graceful_shutdown": any(
                "Finished server process" in line or "Stopping parent process" in line
                for line in server_errors
            ),
            "access_log_lines_for_recommend": len(recommend_log),
            "stderr_tail": server_errors,
        },
        "model": {
            "path": str(path),
            "kind": meta.get("kind"),
            "n_users": meta.get("n_users"),
            "n_items": meta.get("n_items"),
            "num_factors": meta.get("params", {}).get("num_factors"),
            "n_train_ratings": meta.get("n_train_ratings"),
        },
        "config": {
            "endpoint": "GET /recommend",
            "rate_per_s": args.rate,
            "requests_max": args.requests,
            "duration_max_s": args.duration,
            "n": args.n,
            "genre": args.genre,
            "unknown_fraction": args.unknown_fraction,
            "connections": args.connections,
            "reloads": args.reloads,
            "swap_to": args.swap_to,
        },
        "results": summary,
        "serving_versions": {
            pkg: metadata.version(pkg)
            for pkg in ("fastapi", "starlette", "uvicorn", "httpx", "pydantic")
        },
    }
    out_path = write_result(args.out, result)
    lat = summary["latency_ms"]
    print(
        f"{summary['requests']} requests at {summary['achieved_rate_per_s']}/s: "
        f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; "
        f"{summary['failed']} failed; reloads: "
        f"{[(r['status'], r['requests_in_flight_during_reload']) for r in summary['reloads']]}"
    )
    print(f"wrote {out_path}")
    return 1 if summary["failed"] or any(r["status"] != 200 for r in summary["reloads"]) else 0


if __name__ == "__main__":
    sys.exit(main())
