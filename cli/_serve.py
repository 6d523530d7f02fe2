"""``spotify-engine serve``: the REST API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from cli._common import console, settings


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind (default SPOTIFY_ENGINE_API_HOST or 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port (default SPOTIFY_ENGINE_API_PORT or 8000)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Worker processes (default SPOTIFY_ENGINE_API_WORKERS or 1)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = False,
) -> None:
    """Serve the REST API (OpenAPI docs at /docs) over Neo4j and the active model runs."""
    import uvicorn

    s = settings()
    s.password()  # fail fast, in one line, when no Neo4j password can be found
    host = host or s.api_host
    port = port or s.api_port
    workers = workers or s.api_workers
    console.print(
        f"serving on http://{host}:{port} (docs at /docs), {workers} worker(s), "
        f"Neo4j {s.uri}, runs in {s.runs_dir}"
    )
    uvicorn.run(
        "api.app:get_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        loop="auto",
        http="auto",
    )
