"""A Neo4j Browser guide and stylesheet for exploring recommendations and their explanations.

Neo4j Browser 5 plays remote guides (``:play <url>``) in the legacy HTML slide format::

    <article class="guide"><carousel class="deck container-fluid">
      <slide class="row-fluid"> ... <pre class="pre-scrollable code runnable">QUERY</pre>

A click on a ``pre.runnable`` block copies its text into the editor. The explain slides take
their Cypher, purpose and parameters from the named statements in ``cypher/explain/`` through
the registry, so the guide shows exactly the queries the code runs; an explain statement the
guide does not know yet still gets a slide of its own. Only the slides about raw listening and
sessions come from ``cypher/browser/*.cypher`` (``BROWSER_QUERIES``): nothing else runs them.

Browser fetches the guide and ``:style <url>`` stylesheets from the page with ``fetch`` and
custom cache headers, so the little server here answers CORS preflights too, and the host
that serves them must be in ``browser.remote_content_hostname_whitelist`` (see
``LocalServer.write_config``).
"""

from __future__ import annotations

import html
import http.server
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from graphdb._registry import CYPHER_DIR, QueryRegistry, get_registry

log = logging.getLogger(__name__)

STYLE_PATH = CYPHER_DIR / "browser" / "style.grass"
GUIDE_TITLE = "Explore spotify-engine recommendations"
DEFAULT_USER = "U00001"
DEFAULT_SONG = "S000001"
DEFAULT_K = 10


@dataclass(frozen=True)
class BrowserQuery:
    """A read-only query shown in the guide only (never run by the package)."""

    name: str
    text: str
    purpose: str
    params: tuple[str, ...]


BROWSER_QUERIES: dict[str, BrowserQuery] = {
    name: BrowserQuery(name, st.text, st.purpose, st.params)
    for name in get_registry().names("browser")
    for st in (get_registry()[name],)
}

# (title, lead, statement name, what to look at). Statements named "explain/..." come from
# the registry; the others from BROWSER_QUERIES.
_SLIDES: tuple[tuple[str, str, str, str], ...] = (
    (
        "The graph model",
        "Labels and relationship types",
        "browser/graph_model",
        "Listening is <code>(User)-[:LISTENED]-&gt;(Song)-[:BY]-&gt;(Artist)</code> and "
        "<code>(User)-[:HAD]-&gt;(Session)-[:PLAYED]-&gt;(Song)</code>. A model run adds "
        "<code>(User)-[:RECEIVED]-&gt;(Recommendation)-[:OF]-&gt;(Song)</code> and the evidence "
        "<code>(Recommendation)-[:BECAUSE {kind, weight}]-&gt;(Song|User|Artist|Genre|Playlist)"
        "</code>.",
    ),
    (
        "A user's listening",
        "What the user played most",
        "browser/user_listening",
        "The <code>LISTENED</code> captions are play counts: the aggregate the models train on.",
    ),
    (
        "Their sessions",
        "Plays in order",
        "browser/user_sessions",
        "Each <code>PLAYED</code> edge is one play; its caption is the position in the session.",
    ),
    (
        "Their recommendations",
        "Best first, with the top three reasons",
        "explain/recommendations_for_user",
        "To explain another song, click the <code>:param song_id</code> line of the next "
        "slide, put one of these <code>song_id</code>s in it, and run it.",
    ),
    (
        "Why this song?",
        "The evidence, strongest first",
        "explain/why_recommended",
        "Each piece has a <code>kind</code> and a <code>weight</code> (its share of the "
        "recommendation's evidence; weights sum to 1). <code>played</code>: a song the user "
        "listened to; <code>similar_user</code>: a listener of this song who shares "
        "<code>songs_in_common</code> songs with the user; <code>artist</code> / "
        "<code>genre</code>: the song's own artist or genre; <code>genre_affinity</code>: a "
        "genre holding <code>share_of_plays</code> of the user's plays (top 3, or at least "
        "10%). <code>named</code> marks the (at most three) pieces the sentence names.",
    ),
    (
        "Check the evidence",
        "Every claim next to the fact in the graph",
        "explain/check_recommendations",
        "<code>fact</code> is what the graph holds (the user's plays of a played song, songs in "
        "common with a listener, the share of plays in a genre, whether the song is BY the "
        "artist or IN_GENRE the genre); <code>holds</code> must be true for every piece, and "
        "<code>stated</code> (the number in the sentence) must equal the fact.",
    ),
    (
        "The explanation as a graph",
        "User, recommendation, song and the weighted evidence",
        "explain/explanation_graph",
        "The red <code>BECAUSE</code> edges carry the kind and weight of each reason (with the "
        "style applied). Double-click a node to expand it.",
    ),
    (
        "The user's genres",
        "Plays per genre, and the AFFINITY written back",
        "explain/genre_listening",
        "A play counts for every genre its song is <code>IN_GENRE</code>, so shares can add up "
        "to more than 1. <code>AFFINITY.weight</code> is exactly <code>share_of_plays</code> "
        "for the user's most played genres (up to five): listening, not a model quantity.",
    ),
    (
        "Genres driving the user",
        "Evidence weight through genres, next to the user's AFFINITY",
        "explain/genres_driving_user",
        "<code>evidence_weight</code> sums the BECAUSE weights that reach a genre (directly or "
        "through a song or artist in it): the model's use of the genre. <code>affinity</code> "
        "is the user's share of plays in it.",
    ),
    (
        "Who else got this song",
        "Users recommended the song, and their strongest reason",
        "explain/users_for_song",
        "Useful to see whether a song is recommended for one reason or for many.",
    ),
    (
        "Similar songs",
        "Nearest neighbours by the model",
        "explain/similar_songs",
        "<code>SIMILAR_TO</code> is written per model run, with <code>score</code> and "
        "<code>rank</code>.",
    ),
)


def _cypher_literal(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def param_lines(params: tuple[str, ...], values: Mapping[str, str | int]) -> str:
    """The ``:param name => value`` commands that set ``params`` (one per line, ``;``-ended).

    Browser runs them together in multi-statement mode; ``=>`` evaluates the value on the
    server, so a string stays a string and ``k`` an integer.
    """
    return "\n".join(f":param {p} => {_cypher_literal(values[p])};" for p in params)


def _pre(text: str) -> str:
    return f'<pre mode="cypher" class="pre-scrollable code runnable">{html.escape(text)}</pre>'


def _slide(title: str, lead: str, body: str) -> str:
    return (
        '<slide class="row-fluid">\n'
        '<div class="col-sm-3">\n'
        f"<h3>{html.escape(title)}</h3>\n"
        f'<p class="lead">{html.escape(lead)}</p>\n'
        "</div>\n"
        f'<div class="col-sm-9">\n{body}\n</div>\n'
        "</slide>"
    )


def _query_body(
    name: str,
    text: str,
    purpose: str,
    params: tuple[str, ...],
    note: str,
    values: Mapping[str, str | int],
) -> str:
    parts = [f"<p>{html.escape(purpose)} <small>(<code>{html.escape(name)}</code>)</small></p>"]
    if params:
        parts.append("<p>First set the parameters (click, then run):</p>")
        parts.append(_pre(param_lines(params, values)))
        parts.append("<p>Then the query:</p>")
    parts.append(_pre(text))
    parts.append(f"<p>{note}</p>")
    return "\n".join(parts)


def render_guide(
    registry: QueryRegistry,
    *,
    example_user: str | None = None,
    example_song: str | None = None,
    style_url: str | None = None,
    k: int = DEFAULT_K,
) -> str:
    """The guide as Browser slide HTML, its explain queries taken from ``registry``.

    Args:
        registry: the named statements; every ``explain/*`` one gets a slide.
        example_user: the ``user_id`` the ``:param`` lines set (default ``U00001``).
        example_song: the ``song_id`` they set (default ``S000001``).
        style_url: where ``style.grass`` is served; adds a ``:style`` line to the first slide.
        k: the ``k`` parameter (rows per list).
    """
    if not 1 <= k <= 1000:
        raise ValueError(f"k must be 1..1000 (got {k})")
    values: dict[str, str | int] = {
        "user_id": example_user or DEFAULT_USER,
        "song_id": example_song or DEFAULT_SONG,
        "k": k,
    }
    explain = registry.names("explain")
    covered = {name for _, _, name, _ in _SLIDES}
    slides_spec = [s for s in _SLIDES if s[2] in BROWSER_QUERIES or s[2] in explain]
    slides_spec += [
        (name.split("/", 1)[1].replace("_", " ").capitalize(), "From cypher/explain", name, "")
        for name in explain
        if name not in covered
    ]
    all_params = ("user_id", "song_id", "k")
    intro = [
        "<p>A tour of the listening graph, the recommendations a model run wrote back, and the "
        "weighted evidence that explains each one. Click a grey block to copy it into the "
        "editor, then run it (Ctrl+Enter).</p>",
        "<p>Set the example user, song and list length once; every slide uses them:</p>",
        _pre(param_lines(all_params, values)),
    ]
    if style_url:
        intro += [
            "<p>Colour, size and captions per label (the explanation reads best with it):</p>",
            _pre(f":style {style_url}"),
        ]
    intro.append(
        "<ul>" + "".join(f"<li>{html.escape(title)}</li>" for title, *_ in slides_spec) + "</ul>"
    )
    slides = [_slide(GUIDE_TITLE, "Recommendations you can query", "\n".join(intro))]
    for title, lead, name, note in slides_spec:
        if name in BROWSER_QUERIES:
            bq = BROWSER_QUERIES[name]
            text, purpose, params = bq.text, bq.purpose, bq.params
        else:
            stmt = registry[name]
            text, purpose, params = stmt.text, stmt.purpose, stmt.params
        missing = [p for p in params if p not in values]
        if missing:
            raise ValueError(f"{name}: the guide has no example value for {missing}")
        slides.append(_slide(title, lead, _query_body(name, text, purpose, params, note, values)))
    return (
        "<!DOCTYPE html>\n"
        f'<html><head><meta charset="utf-8"><title>{html.escape(GUIDE_TITLE)}</title></head>'
        "<body>\n"
        '<article class="guide">\n'
        '<carousel class="deck container-fluid">\n' + "\n".join(slides) + "\n</carousel>\n"
        "</article>\n</body></html>\n"
    )


def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """Parse a GRASS stylesheet the way Neo4j Browser does (``selector { key: value; }``).

    Quotes are dropped, braces inside quotes are kept, and a declaration whose value holds a
    second ``:`` is skipped, as Browser skips it.
    """
    rules: dict[str, str] = {}
    selector, body = "", ""
    in_quote = in_rule = False
    for ch in text:
        if ch in "'\"":
            in_quote = not in_quote
        elif ch == "{" and not in_quote:
            in_rule = True
        elif ch == "}" and not in_quote:
            rules[selector], selector, body, in_rule = body, "", "", False
        elif in_rule:
            body += ch
        elif not ch.isspace():
            selector += ch
    parsed: dict[str, dict[str, str]] = {}
    for sel, decls in rules.items():
        props: dict[str, str] = {}
        for decl in decls.split(";"):
            parts = decl.split(":")
            if len(parts) == 2:
                props[parts[0].strip()] = parts[1].strip()
        parsed[sel] = props
    return parsed


def _selector_ok(selector: str) -> bool:
    return re.fullmatch(r"(node|relationship)(\.\w+)*", selector) is not None


def load_style(path: Path = STYLE_PATH) -> str:
    """The stylesheet text, checked to parse into well-formed rules."""
    text = path.read_text(encoding="utf-8")
    rules = parse_grass(text)
    bad = [s for s in rules if not _selector_ok(s)]
    if not rules or bad:
        raise ValueError(f"{path}: not a GRASS stylesheet (bad selectors: {bad or 'none found'})")
    return text


class _GuideHandler(http.server.BaseHTTPRequestHandler):
    files: Mapping[str, tuple[bytes, str]] = {}

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header(
            "Access-Control-Allow-Headers",
            self.headers.get("Access-Control-Request-Headers") or "*",
        )
        self.send_header("Access-Control-Max-Age", "600")

    def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(204)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, with_body: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        found = self.files.get(path)
        if found is None:
            body, ctype, code = b"not found\n", "text/plain; charset=utf-8", 404
        else:
            (body, ctype), code = found, 200
        self.send_response(code)
        self._cors()
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._send(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.info("guide server: " + format, *args)


def serve_guide(
    host: str,
    port: int,
    *,
    public_host: str | None = None,
    example_user: str | None = None,
    example_song: str | None = None,
    k: int = DEFAULT_K,
    registry: QueryRegistry | None = None,
    style_text: str | None = None,
) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    """Serve ``/guide.html`` and ``/style.grass`` from a daemon thread, CORS open to all.

    Args:
        host: address to bind (``127.0.0.1`` keeps it on this machine).
        port: port to bind; 0 picks a free one (read ``server.server_address``).
        public_host: the host name Browser uses, in the guide's ``:style`` line (default
            ``localhost`` for a loopback or wildcard ``host``, else ``host``); it must be in
            Neo4j's ``browser.remote_content_hostname_whitelist``.
        example_user, example_song, k: passed to ``render_guide``.
        registry: the named statements (default: the project's).
        style_text: the stylesheet (default ``cypher/browser/style.grass``).

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    style = style_text if style_text is not None else load_style()
    server = http.server.ThreadingHTTPServer((host, port), _GuideHandler)
    server.daemon_threads = True
    bound_port = server.server_address[1]
    if public_host is None:
        public_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "") else host
    try:
        guide_html = render_guide(
            registry or get_registry(),
            example_user=example_user,
            example_song=example_song,
            style_url=f"http://{public_host}:{bound_port}/style.grass",
            k=k,
        )
    except Exception:
        server.server_close()
        raise
    server.RequestHandlerClass = type(
        "GuideHandler",
        (_GuideHandler,),
        {
            "files": {
                "/guide.html": (guide_html.encode("utf-8"), "text/html; charset=utf-8"),
                "/style.grass": (style.encode("utf-8"), "text/plain; charset=utf-8"),
            }
        },
    )
    thread = threading.Thread(target=server.serve_forever, name="guide-server", daemon=True)
    thread.start()
    log.info("serving the Browser guide on http://%s:%d/guide.html", public_host, bound_port)
    return server, thread
