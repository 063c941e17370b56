"""`bertkit serve`: a model folder behind an HTTP API, with dynamic batching.

    bertkit serve --model DIR                      # embed on http://127.0.0.1:8080
    curl -s localhost:8080/embed -H 'Content-Type: application/json' -d '{"inputs": ["hello"]}'

Modules: settings (the flags and limits), batcher (queue + forward threads), runners (the model
behind bertkit.embed / bertkit.pipeline), schemas (request bodies), app (routes, errors, the
gate), metrics (Prometheus text), server (uvicorn, binding, graceful stop). FastAPI and uvicorn
come with the `serve` extra; nothing here is imported by the rest of bertkit.
"""

from __future__ import annotations

from bertkit.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
