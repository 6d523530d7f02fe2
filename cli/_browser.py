"""``spotify-engine browser ...``: explore recommendations in Neo4j Browser."""

from __future__ import annotations

import errno
from typing import Annotated

import typer

from cli._common import console, settings
from graphdb import serve_guide
from spotify_engine.errors import ConfigError, PortInUse

browser_app = typer.Typer(help="Explore recommendations and explanations in Neo4j Browser.")


@browser_app.command()
def guide(
    port: Annotated[
        int,
        typer.Option(
            envvar="SPOTIFY_ENGINE_GUIDE_PORT", min=1, max=65535, help="Port of the guide server."
        ),
    ] = 8765,
    host: Annotated[
        str,
        typer.Option(
            envvar="SPOTIFY_ENGINE_GUIDE_HOST",
            help="Host name Browser uses for the guide (Neo4j must allow-list it).",
        ),
    ] = "localhost",
    bind: Annotated[str, typer.Option(help="Address the guide server listens on.")] = "127.0.0.1",
    open_user: Annotated[
        str | None, typer.Option("--open-user", help="User id the guide's :param lines set.")
    ] = None,
    open_song: Annotated[
        str | None, typer.Option("--open-song", help="Song id the guide's :param lines set.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=1000, help="Rows per list in the guide.")] = 10,
) -> None:
    """Serve the Browser guide and style, and print what to type in Browser (Ctrl-C stops)."""
    s = settings()
    base = f"http://{host}:{port}"
    try:
        server, thread = serve_guide(
            bind, port, public_host=host, example_user=open_user, example_song=open_song, k=k
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"the guide port {port} is already in use", hint=f"--port {port + 1}"
            ) from exc
        raise ConfigError(f"cannot listen on {bind}:{port}: {exc.strerror}") from exc
    style_cmd, play_cmd = f":style {base}/style.grass", f":play {base}/guide.html"
    if s.uses_local_server:
        browser = f"http://localhost:{s.http_port}/browser/"
        connect = f"{browser}?dbms=neo4j://{s.neo4j_user}@localhost:{s.bolt_port}"
        lines = [
            f"Browser      {connect}",
            f"Credentials  user {s.neo4j_user}, password in {s.password_file}",
        ]
    else:
        connect = ""
        lines = [f"Browser      the Browser of {s.uri} (allow-list {host} in its settings)"]
    lines += [f"Then type    {style_cmd}", f"             {play_cmd}"]
    if connect:
        lines.append(f"Or open      {connect}&cmd=play&arg={base}/guide.html")
    if s.guide_port == port and s.guide_host == host:
        lines.append("On connect   Neo4j runs both for you (browser.post_connect_cmd)")
    elif s.uses_local_server:
        lines.append(
            f"Tip          with SPOTIFY_ENGINE_GUIDE_PORT={port} set when Neo4j starts, "
            "Browser runs both on connect"
        )
    try:
        console.print(f"Browser guide on {base}/guide.html (Ctrl-C stops it)", highlight=False)
        for line in lines:
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    console.print("guide server stopped")
