"""Run the app under uvicorn: bind first (a taken port is a one-line error), stop gracefully.

SIGTERM or Ctrl-C: uvicorn stops accepting connections, lets the requests in flight finish (up
to the request timeout), closes idle connections, then the batcher drains and its threads end.
The process then exits 0: uvicorn re-raises the signal it caught once it is done, so the
handlers it restores are ones that let the process end normally.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

from bertkit.errors import BertkitError
from bertkit.log import get_logger
from bertkit.serve.runners import build_runner
from bertkit.serve.settings import ServeSettings

logger = get_logger(__name__)
SERVE_EXTRA = "pip install 'bertkit[serve]'"


def require_serve_extra() -> None:
    """A one-line error naming the extra when FastAPI, uvicorn or orjson is missing."""
    for module in ("fastapi", "uvicorn", "orjson"):
        try:
            __import__(module)
        except ImportError:
            raise BertkitError(f"bertkit serve needs {module}: {SERVE_EXTRA}") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or a one-line error."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name: resolved by bind
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise BertkitError(
            f"--host {host} --port {port}: cannot listen there ({err.strerror}); pick another port"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def graceful_signals(server: Any) -> Iterator[None]:
    """While serving, SIGTERM and SIGINT end in a normal exit once uvicorn has drained.

    Entered before the URL is announced: a signal that arrives before uvicorn's own handlers are
    in place (a client may send it as soon as it reads the URL) tells the uvicorn `server` to exit
    once started, instead of being lost; the handlers restored after uvicorn re-raises its signal
    are these, so the process ends normally."""

    def stop(*_: Any) -> None:
        server.should_exit = True

    caught = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, stop) for sig in caught}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(settings: ServeSettings, on_listening: Callable[[str], None] | None = None) -> None:
    """Load the model, bind, and answer until SIGTERM / Ctrl-C; on_listening(url) once ready."""
    require_serve_extra()
    import uvicorn  # lazy: optional extra [serve]

    # lazy: optional extra [serve] (fastapi), after require_serve_extra's one-line error
    from bertkit.serve.app import create_app

    settings.check()
    if not _is_loopback(settings.host):
        logger.warning(
            f"listening on {settings.host}: other machines can reach this server"
            + ("" if settings.api_key else "; give --api-key KEY to require a key")
        )
    sock = bind(settings.host, settings.port)
    try:
        app = create_app(settings, build_runner(settings))
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(settings.timeout) + 5,
            lifespan="on",
        )
        host, port = sock.getsockname()[:2]
        url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        server = uvicorn.Server(config)
        with graceful_signals(server):
            if on_listening is not None:
                on_listening(url)
            server.run(sockets=[sock])
    finally:
        sock.close()
    logger.info("stopped: every request in flight was answered")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
