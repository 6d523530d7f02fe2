"""``spotify-engine neo4j ...``: provision and run the local Neo4j server."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from cli._common import console, human_bytes, settings
from graphdb import LocalServer

neo4j_app = typer.Typer(help="Provision and run a local Neo4j 5.26 server (no Docker needed).")


def _server() -> LocalServer:
    return LocalServer(settings())


@neo4j_app.command()
def install() -> None:
    """Download Neo4j from Maven Central (cached) and create the local instance."""
    server = _server()
    t0 = time.perf_counter()
    with console.status(f"Installing Neo4j {server.settings.neo4j_version} ..."):
        did = server.install()
    verb = "installed" if did else "already installed"
    console.print(
        f"Neo4j {server.settings.neo4j_version} {verb} in {server.home} "
        f"({time.perf_counter() - t0:.1f}s); password in {server.settings.password_file}"
    )


@neo4j_app.command()
def start(
    install_first: Annotated[
        bool, typer.Option("--install/--no-install", help="Install first when needed.")
    ] = True,
) -> None:
    """Start the local server and wait until Bolt answers."""
    server = _server()
    if install_first and not server.installed():
        with console.status("Installing Neo4j ..."):
            server.install()
    t0 = time.perf_counter()
    with console.status("Starting Neo4j ..."):
        st = server.start()
    console.print(
        f"Neo4j running (pid {st.pid}) in {time.perf_counter() - t0:.1f}s: "
        f"bolt {st.bolt_uri}, browser {st.browser_url}, "
        f"user {server.settings.neo4j_user}, password in {server.settings.password_file}"
    )


@neo4j_app.command()
def stop() -> None:
    """Stop the local server cleanly."""
    if _server().stop():
        console.print("Neo4j stopped")
    else:
        console.print("Neo4j was not running")


@neo4j_app.command()
def status() -> None:
    """Running or stopped, pid, ports, version, memory."""
    st = _server().status()
    table = Table(show_header=False, box=None)
    table.add_row("state", "[green]running[/]" if st.running else "[yellow]stopped[/]")
    table.add_row("installed", "yes" if st.installed else "no")
    table.add_row("pid", str(st.pid or "-"))
    table.add_row("bolt", st.bolt_uri)
    table.add_row("browser", st.browser_url)
    table.add_row("version", st.version)
    table.add_row("home", str(st.home))
    table.add_row("memory (RSS)", human_bytes(st.rss_bytes))
    console.print(table)


@neo4j_app.command()
def logs(
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many lines.")] = 50,
) -> None:
    """Print the tail of the server log."""
    console.print(_server().log_tail(lines), markup=False, highlight=False)


@neo4j_app.command()
def reset(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete all data of the local server (the download cache and password are kept)."""
    server = _server()
    if not yes:
        typer.confirm(f"Delete all data in {server.home / 'data'}?", abort=True)
    server.reset()
    console.print("Neo4j data reset")
