"""`bertkit serve` as a process: loopback by default, a free port, SIGTERM drains and exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def _start(model: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, BERTKIT_API_KEY="")
    env.pop("BERTKIT_API_KEY")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bertkit", "serve", "--model", str(model), "--port", "0", "--quiet", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if "http://" not in line:
        proc.kill()
        pytest.fail(f"the server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, line[line.index("http://") :].split()[0]


def _post(url: str, body: dict, timeout: float = 60) -> tuple[int, object]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _inputs_done(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text = r.read().decode()
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith("bertkit_inputs_total ")))


def _refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except OSError:
        return True


@pytest.mark.slow
def test_sigterm_stops_accepting_finishes_in_flight_requests_and_exits_0(tiny_dir):
    # one input per forward: 600 forwards keep one request in flight while the signal arrives
    proc, url = _start(tiny_dir, "--max-batch-requests", "1", "--max-inputs", "600", "--workers", "1")
    try:
        assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
        texts = [f"sentence number {i} of a long request" for i in range(600)]
        answer: dict = {}
        sender = threading.Thread(
            target=lambda: answer.update(zip(("status", "body"), _post(f"{url}/embed", {"inputs": texts})))
        )
        sender.start()
        deadline = time.monotonic() + 60
        while _inputs_done(url) < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        done_at_signal = _inputs_done(url)
        proc.send_signal(signal.SIGTERM)
        refused_while_in_flight = False
        while sender.is_alive() and time.monotonic() < deadline:
            if _refuses_connections(url):
                refused_while_in_flight = sender.is_alive()
                break
            time.sleep(0.01)
        sender.join(60)
        status = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done_at_signal < len(texts), "the request finished before the signal: nothing was in flight"
    assert refused_while_in_flight, "new connections were still accepted while the request was in flight"
    assert answer["status"] == 200 and len(answer["body"]) == len(texts)
    assert status == 0, proc.stderr.read() if proc.stderr else ""


def test_sigterm_as_soon_as_the_url_is_printed_still_exits_0(tiny_dir):
    """A client may stop the server the moment it reads the URL, before uvicorn has put its own
    signal handlers in place: the signal must still stop it (it once was swallowed: a hang)."""
    for _ in range(3):
        proc, _url = _start(tiny_dir)
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_taken_port_is_one_line_and_exit_2(tiny_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bertkit", "serve", "--model", str(tiny_dir), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--port {port}" in lines[0] and "pick another port" in lines[0], result.stderr
