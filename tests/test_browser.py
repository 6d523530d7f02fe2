"""Exploring recommendations in Neo4j Browser: the guide, the style, and a real Browser session.

The plain tests check what we generate (guide HTML from the registry, the GRASS stylesheet, the
browser.* lines of neo4j.conf, the little guide server, the CLI). The ``browser`` test drives
the Neo4j Browser 5.24 that the server ships, in headless Chromium, through the Python
Playwright package pointed at Debian's ``/usr/bin/chromium`` (Playwright's own browser
downloads do not work offline). Screenshots land in ``artifacts/browser/``.
"""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import neo4j
import pytest

from graphdb import Evidence, LocalServer, RecommendationRow, Writeback, get_registry
from graphdb._guide import (
    BROWSER_QUERIES,
    GUIDE_TITLE,
    STYLE_PATH,
    load_style,
    parse_grass,
    render_guide,
    serve_guide,
)
from spotify_engine.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LABELS = ("User", "Song", "Artist", "Genre", "Playlist", "Recommendation", "Session", "Album")
_VOID = {"meta", "br", "img", "hr", "input", "link"}


class _GuideParser(HTMLParser):
    """Checks that tags nest and collects the text of every runnable ``<pre>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.runnables: list[str] = []
        self.titles: list[str] = []
        self._text: list[str] | None = None
        self._in_h3 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        self.stack.append(tag)
        classes = (dict(attrs).get("class") or "").split()
        if tag == "pre" and "runnable" in classes:
            self._text = []
        self._in_h3 = tag == "h3"

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "pre" and self._text is not None:
            self.runnables.append("".join(self._text))
            self._text = None
        if tag == "h3":
            self._in_h3 = False

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)
        if self._in_h3:
            self.titles.append(data)


def _parse_guide(text: str) -> _GuideParser:
    parser = _GuideParser()
    parser.feed(text)
    parser.close()
    return parser


def test_guide_shows_every_explain_query_verbatim() -> None:
    reg = get_registry()
    page = render_guide(reg, example_user="U00042", example_song="S000007", style_url=None)
    parsed = _parse_guide(page)
    assert parsed.errors == [] and parsed.stack == []
    assert '<article class="guide">' in page and '<carousel class="deck container-fluid">' in page
    assert page.count('<slide class="row-fluid">') == len(parsed.titles) >= 10
    assert parsed.titles[0] == GUIDE_TITLE
    explain = reg.names("explain")
    assert len(explain) >= 6
    for name in explain:
        assert name in page
        assert reg[name].text in parsed.runnables, f"{name} is not shown verbatim"
    for bq in BROWSER_QUERIES.values():
        assert bq.text in parsed.runnables
        assert set(re.findall(r"\$(\w+)", bq.text)) == set(bq.params), bq.name
    assert "CALL db.schema.visualization()" in parsed.runnables
    assert ":param user_id => 'U00042';" in parsed.runnables[0]
    assert ":param song_id => 'S000007';" in parsed.runnables[0]
    assert ":param k => 10;" in parsed.runnables[0]
    assert not any(r.startswith(":style") for r in parsed.runnables)


def test_guide_param_values_are_cypher_literals() -> None:
    page = render_guide(get_registry(), example_user="O'Brien", style_url="http://h:1/style.grass")
    runnables = _parse_guide(page).runnables
    assert ":param user_id => 'O\\'Brien';" in runnables[0]
    assert ":style http://h:1/style.grass" in runnables
    with pytest.raises(ValueError, match="k must be 1..1000"):
        render_guide(get_registry(), k=0)


def test_style_parses_like_browser() -> None:
    rules = parse_grass(load_style())
    for label in LABELS:
        assert "caption" in rules[f"node.{label}"], label
        assert rules[f"node.{label}"]["color"].startswith("#")
    assert rules["node.User"]["caption"] == "{name}"
    assert "{rank}" in rules["node.Recommendation"]["caption"]
    because = rules["relationship.BECAUSE"]
    assert "{kind}" in because["caption"] and "{weight}" in because["caption"]
    widths = {
        sel: float(r["shaft-width"].rstrip("px")) for sel, r in rules.items() if "shaft-width" in r
    }
    assert widths["relationship.BECAUSE"] == max(widths.values())
    # Browser drops a declaration whose value holds a second ':', so captions must not.
    declared = STYLE_PATH.read_text().count(";")
    assert sum(len(r) for r in rules.values()) == declared


def test_conf_allow_lists_guide_host_and_opens_guide(tmp_path: Path) -> None:
    def browser_lines(**kw: object) -> list[str]:
        s = Settings(neo4j_home=tmp_path, **kw)  # type: ignore[arg-type]
        LocalServer(s).write_config()
        conf = (tmp_path / "conf" / "neo4j.conf").read_text()
        return [ln for ln in conf.splitlines() if ln.startswith("browser.")]

    assert browser_lines(guide_host="localhost", guide_port=None) == [
        "browser.remote_content_hostname_whitelist=guides.neo4j.com,localhost"
    ]
    assert browser_lines(guide_host="guides.example.org", guide_port=9000) == [
        "browser.remote_content_hostname_whitelist=guides.neo4j.com,localhost,guides.example.org",
        "browser.post_connect_cmd=style http://guides.example.org:9000/style.grass; "
        "play http://guides.example.org:9000/guide.html",
    ]


def test_guide_server_answers_cors_preflight() -> None:
    server, thread = serve_guide("127.0.0.1", 0, example_user="u1")
    port = server.server_address[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            pre = client.options(
                "/guide.html",
                headers={
                    "Origin": "http://localhost:7474",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "pragma,cache-control",
                },
            )
            assert pre.status_code == 204
            assert pre.headers["access-control-allow-origin"] == "*"
            assert "cache-control" in pre.headers["access-control-allow-headers"]
            page = client.get("/guide.html")
            assert page.status_code == 200 and page.headers["access-control-allow-origin"] == "*"
            assert f":style http://localhost:{port}/style.grass" in html.unescape(page.text)
            assert ":param user_id => 'u1';" in html.unescape(page.text)
            style = client.get("/style.grass")
            assert style.status_code == 200 and parse_grass(style.text) == parse_grass(load_style())
            assert client.get("/other").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
    thread.join(5)
    assert not thread.is_alive()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_cli_serves_guide_until_ctrl_c() -> None:
    port = _free_port()
    code = "from cli import main; main()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "browser",
            "guide",
            "--port",
            str(port),
            "--open-user",
            "U00009",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, COLUMNS="200"),
        # A shell's background job (`cmd &`) starts with SIGINT ignored, and Python keeps an
        # ignored SIGINT ignored: give the child the default so Ctrl-C reaches it as it would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        out = ""
        deadline = time.monotonic() + 60
        while f":play http://localhost:{port}/guide.html" not in out:
            assert proc.poll() is None and time.monotonic() < deadline, out
            out += proc.stdout.readline()  # type: ignore[union-attr]
        assert f":style http://localhost:{port}/style.grass" in out
        page = httpx.get(f"http://127.0.0.1:{port}/guide.html", timeout=10)
        assert ":param user_id => 'U00009';" in html.unescape(page.text)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert "guide server stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- a real Neo4j Browser in headless Chromium ---------------------------------------------------


def _tiny_graph(driver: neo4j.Driver, db: str) -> None:
    driver.execute_query(
        """
        CREATE (u1:User {id: 'u1', name: 'Ann'}), (u2:User {id: 'u2', name: 'Bob'}),
               (g1:Genre {id: 'g1', name: 'Indie Rock'}), (g2:Genre {id: 'g2', name: 'Jazz'}),
               (a1:Artist {id: 'a1', name: 'The Band'}), (al:Album {id: 'al1', name: 'Debut'}),
               (s1:Song {id: 's1', name: 'One'}), (s2:Song {id: 's2', name: 'Two'}),
               (s3:Song {id: 's3', name: 'Three'}), (s4:Song {id: 's4', name: 'Four'}),
               (s1)-[:BY]->(a1), (s2)-[:BY]->(a1), (s3)-[:BY]->(a1), (s1)-[:ON]->(al),
               (s1)-[:IN_GENRE {weight: 1.0}]->(g1), (s3)-[:IN_GENRE {weight: 1.0}]->(g1),
               (s4)-[:IN_GENRE {weight: 1.0}]->(g2),
               (u1)-[:LISTENED {plays: 3}]->(s1), (u1)-[:LISTENED {plays: 1}]->(s2),
               (u2)-[:LISTENED {plays: 2}]->(s4),
               (u1)-[:HAD]->(se:Session {id: 'u1@1000', start: 1000, end: 2000, plays: 2}),
               (se)-[:PLAYED {pos: 0, at: 1000}]->(s1), (se)-[:PLAYED {pos: 1, at: 1500}]->(s2),
               (u2)-[:CREATED]->(pl:Playlist {id: 'pl1', name: 'Road Trip'}),
               (pl)-[:CONTAINS {pos: 0}]->(s3)
        """,
        database_=db,
    )
    wb = Writeback(driver, db, run_id="run-browser", model="EnhancedGAT")
    wb.recommendations(
        [
            RecommendationRow(
                "u1",
                "s3",
                1,
                2.5,
                [
                    Evidence("Song", "s1", "played", 0.5),
                    Evidence("Artist", "a1", "artist", 0.25),
                    Evidence("Genre", "g1", "genre", 0.15),
                    Evidence("Playlist", "pl1", "playlist", 0.1),
                ],
                reason="Because you played One",
            ),
            RecommendationRow("u1", "s4", 2, 1.0, [Evidence("User", "u2", "similar_user", 1.0)]),
            RecommendationRow("u2", "s1", 1, 0.7, [Evidence("Genre", "g1", "genre", 1.0)]),
        ]
    )
    wb.similar_songs([("s1", "s3", 0.9), ("s1", "s2", 0.95), ("s3", "s1", 0.9)])
    wb.affinities([("u1", "g1", 0.8)])


@pytest.mark.neo4j
def test_browser_only_queries_read_the_graph(graph: neo4j.Driver, neo4j_settings: Settings) -> None:
    db = neo4j_settings.neo4j_database
    _tiny_graph(graph, db)
    listening = BROWSER_QUERIES["browser/user_listening"].text
    rows, _, _ = graph.execute_query(listening, user_id="u1", database_=db)
    assert [(r["s"]["name"], r["l"]["plays"], r["a"]["name"]) for r in rows] == [
        ("One", 3, "The Band"),
        ("Two", 1, "The Band"),
    ]
    sessions = BROWSER_QUERIES["browser/user_sessions"].text
    rows, _, _ = graph.execute_query(sessions, user_id="u1", database_=db)
    assert sorted((r["se"]["id"], r["p"]["pos"], r["s"]["name"]) for r in rows) == [
        ("u1@1000", 0, "One"),
        ("u1@1000", 1, "Two"),
    ]
    model = BROWSER_QUERIES["browser/graph_model"].text
    rows, _, _ = graph.execute_query(model, database_=db)
    labels = {n["name"] for n in rows[0]["nodes"]}
    assert {"User", "Song", "Recommendation", "Session"} <= labels


@pytest.fixture()
def chromium_page(tmp_path: Path) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (see the dev extra)"
    )
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()


def _run(page, command: str):  # type: ignore[no-untyped-def]
    """Type ``command`` into the main editor, run it, return its (pinned) result frame."""
    _mark_frames(page)
    page.locator("#monaco-main-editor").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(command)
    page.locator('[data-testid="editor-Run"]').click()
    return _pin_newest_frame(page)


def _mark_frames(page) -> None:  # type: ignore[no-untyped-def]
    """Mark the frames shown now, so that the next new one can be told apart.

    (Browser keeps at most 15 frames, so counting them does not work.)
    """
    page.evaluate(
        "() => document.querySelectorAll('[data-testid=\"frame\"]')"
        ".forEach(e => e.setAttribute('data-test-seen', '1'))"
    )


def _pin_newest_frame(page):  # type: ignore[no-untyped-def]
    """Wait for a frame newer than the marked ones (new frames go on top) and pin it."""
    page.wait_for_function(
        "() => { const f = document.querySelector('[data-testid=\"frame\"]');"
        " return f !== null && !f.hasAttribute('data-test-seen'); }"
    )
    pin = f"f{time.monotonic_ns()}"
    page.locator('[data-testid="frame"]').first.evaluate(
        "(e, pin) => e.setAttribute('data-test-pin', pin)", pin
    )
    return page.locator(f'[data-test-pin="{pin}"]')


def _frame_text(frame) -> str:  # type: ignore[no-untyped-def]
    """What a result frame shows: its text (tables, overview) and the graph's captions."""
    return frame.inner_text() + "\n" + " ".join(frame.locator("svg text").all_text_contents())


def _wait_for_text(frame, expected: set[str], timeout_s: float = 30) -> str:  # type: ignore[no-untyped-def]
    """Wait until every string of ``expected`` shows in ``frame``; fail at once on an error."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = _frame_text(frame)
        if error := re.search(r"Neo\.\w*Error\S*", text):
            raise AssertionError(f"Browser shows {error.group(0)}:\n{text[:2000]}")
        if all(e in text for e in expected):
            return text
        time.sleep(0.5)
    missing = sorted(e for e in expected if e not in text)
    raise AssertionError(f"frame never showed {missing}; it shows:\n{text[:2000]}")


# What each guide slide's query shows on the tiny graph (user u1, song s3).
_SLIDE_SHOWS = {
    "The graph model": {"Recommendation", "Session", "BECAUSE"},
    "A user's listening": {"One", "Two", "3 plays"},
    "Their sessions": {"u1@", "#0", "#1"},
    "Their recommendations": {"Three", "Four", "Because you played One"},
    "Why this song?": {"played", "The Band", "run-browser"},
    "Check the evidence": {"Three", "holds", "song_by_artist"},
    "The explanation as a graph": {"#1", "Three", "One", "Ann"},
    "The user's genres": {"Indie Rock", "0.75"},
    "Genres driving the user": {"Indie Rock", "0.8"},
    "Who else got this song": {"Ann", "played"},
    "Similar songs": {"One", "0.9"},
}


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.neo4j
def test_explanation_in_neo4j_browser(
    graph: neo4j.Driver, neo4j_settings: Settings, chromium_page
) -> None:  # type: ignore[no-untyped-def]
    if not neo4j_settings.uses_local_server:
        pytest.skip("drives the Browser that the local server serves")
    page = chromium_page
    _tiny_graph(graph, neo4j_settings.neo4j_database)
    reg = get_registry()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server, _ = serve_guide("127.0.0.1", 0, example_user="u1", example_song="s3")
    base = f"http://localhost:{server.server_address[1]}"
    try:
        page.goto(
            f"http://localhost:{neo4j_settings.http_port}/browser/"
            f"?dbms=neo4j://{neo4j_settings.neo4j_user}@localhost:{neo4j_settings.bolt_port}",
            wait_until="domcontentloaded",
        )
        page.locator('[data-testid="password"]').fill(neo4j_settings.password())
        page.locator('[data-testid="connect"]').click()
        page.get_by_text("You are connected").wait_for()

        params = _run(page, ":param user_id => 'u1';\n:param song_id => 's3';")
        params.locator('[title="Status: success"]').nth(1).wait_for()
        shown = _run(page, ":params")
        shown.get_by_text('"s3"').wait_for()
        assert '"user_id": "u1"' in shown.inner_text()

        query = reg["explain/explanation_graph"].text
        result = _run(page, query)
        _wait_for_text(result, {"Ann", "Three", "One", "The Band", "Indie", "Rock", "Road Trip"})
        page.screenshot(path=str(ARTIFACTS / "explanation-default-style.png"))

        style = _run(page, f":style {base}/style.grass")
        style.get_by_text("node.Recommendation").wait_for()
        assert "not allowed" not in style.inner_text() and "Could not" not in style.inner_text()

        styled = _run(page, query)
        _wait_for_text(styled, {"#1", "Ann", "Three"})
        captions = [t.strip() for t in styled.locator("svg text").all_text_contents()]
        assert not any(c.startswith("BECAU") for c in captions), captions
        assert any(c.startswith(("played", "artist", "genre", "playl")) for c in captions)
        styled.screenshot(path=str(ARTIFACTS / "explanation.png"))

        guide = _run(page, f":play {base}/guide.html")
        guide.locator('[data-testid="carousel"]').wait_for()
        assert guide.locator("h3").first.inner_text().strip() == GUIDE_TITLE
        assert "not allowed" not in guide.inner_text()
        guide.screenshot(path=str(ARTIFACTS / "guide.png"))

        # The guide's own blocks work: set the params, then run the explanation slide's query.
        # The guide's own blocks work: set the params, then run every slide's query.
        _mark_frames(page)
        guide.locator("pre.runnable").first.click()
        editor = page.locator("#monaco-main-editor .view-lines").inner_text().replace("\xa0", " ")
        assert ":param user_id => 'u1';" in editor
        page.locator('[data-testid="editor-Run"]').click()
        _pin_newest_frame(page).locator('[title="Status: success"]').nth(2).wait_for()
        ran = []
        for _ in range(len(_SLIDE_SHOWS)):
            guide.locator('[data-testid="nextSlide"]').click()
            title = guide.locator("h3").first.inner_text().strip()
            _mark_frames(page)
            guide.locator("pre.runnable").last.click()
            page.locator('[data-testid="editor-Run"]').click()
            _wait_for_text(_pin_newest_frame(page), _SLIDE_SHOWS[title])
            ran.append(title)
        assert ran == list(_SLIDE_SHOWS)
    finally:
        page.screenshot(path=str(ARTIFACTS / "last.png"))
        server.shutdown()
        server.server_close()
