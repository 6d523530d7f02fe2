"""Stable ids and field parsing shared by the readers: from source bytes to ids and typed values.

Every reader turns raw bytes into the same kinds of values (names, ids, epoch-ms timestamps,
numbers), and must fail the same way when a value is bad, so a quarantine file reads alike
whatever the source. The helpers here never raise on bad input: they raise :class:`BadField`,
which a reader turns into one ``sink.reject(...)`` with a short, stable reason code.

Reason codes (the ``reason`` of a quarantine record):

- ``encoding``: the row is not valid UTF-8 (or holds a lone surrogate escape).
- ``column_count``: a delimited row with more or fewer fields than the header / format.
- ``truncated``: the last line of a file has no line end and fails to parse, or a JSON file
  stops before its end (an MPD slice is then rejected whole).
- ``line_too_long``: a physical line over ``MAX_LINE_BYTES`` (a file without line ends).
- ``unbalanced_quote``: a quoted CSV field that does not close within ``MAX_RECORD_LINES``.
- ``missing_field``: a required id or field is empty or absent.
- ``empty_name``: a required name is empty or only whitespace.
- ``bad_timestamp``: a timestamp that does not parse.
- ``bad_number``: a number that does not parse, or is negative where it must not be.
- ``bad_id``: an id of the wrong shape (a MusicBrainz id that is not a UUID).
- ``bad_list``: a list literal (Kaggle features ``artists``) that does not parse.
- ``bad_type``: a JSON value of the wrong type (a track that is not an object).
- ``invalid_json``: JSON that does not parse; an MPD slice is then rejected whole.
- ``duplicate_id``: a playlist id already loaded (MPD slices overlapping).
- ``count_mismatch``: an MPD playlist whose ``num_tracks`` is not the length of its ``tracks``.
- ``id_too_long``: an id over ``MAX_ID_BYTES`` bytes of UTF-8 (ids are codes, and an id is an
  index key, which Neo4j limits to about 8 kB). Names have no limit.

Exact repeats of a record (the same scrobble twice) are not rejected: they are dropped and
counted in the report's ``duplicates``.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest._sink import TableSink

Progress = Callable[[int], None]

BOM = b"\xef\xbb\xbf"
MAX_LINE_BYTES = 1 << 20
MAX_RAW_CHARS = 4096
#: Longest id (bytes of UTF-8) a reader accepts. Ids key uniqueness constraints, whose index
#: entries Neo4j limits to about 8 kB; real ids (MBIDs, Spotify URIs, Last.fm user names) are
#: under 100 bytes, and ids built from them (sessions, recommendations) must fit too.
MAX_ID_BYTES = 1024
NAME_KEY_HEX = 16

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_INT = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PROGRESS_EVERY = 1 << 16


class BadField(ValueError):
    """One field of a source row is bad: ``reason`` is the stable code, ``field`` its name."""

    def __init__(self, reason: str, field: str | None, detail: str = "") -> None:
        super().__init__(f"{reason} in {field}: {detail}" if detail else f"{reason} in {field}")
        self.reason = reason
        self.field = field


def normalise_name(text: str) -> str:
    """The form two spellings of one name share: NFC, casefolded, whitespace collapsed.

    Sources disagree on case, spacing and Unicode composition ("Beyoncé" composed or with a
    combining accent); keys built on this form put those spellings on one node.
    """
    text = unicodedata.normalize("NFC", text)
    text = unicodedata.normalize("NFC", text.casefold())
    return " ".join(text.split())


@functools.lru_cache(maxsize=1 << 16)
def name_key(*parts: str) -> str:
    """A short, stable id for an entity that the source names but does not number.

    The normalised parts are joined with a separator no name holds and hashed (sha1, first
    16 hex digits = 64 bits: collisions are negligible below billions of keys), so the same
    names give the same id in every run and every reader (Last.fm, Kaggle) that sees them.
    Cached: artist and playlist names repeat on most rows of a log.
    """
    joined = "\x1f".join(normalise_name(p) for p in parts)
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()[:NAME_KEY_HEX]


def mbid_key(mbid: str, field: str) -> str:
    """``mbid:<uuid>`` for a MusicBrainz id; a malformed one is a bad field, not a new node."""
    if not _UUID.fullmatch(mbid):
        raise BadField("bad_id", field, mbid)
    return f"mbid:{mbid.lower()}"


def _bounded(value: str, field: str) -> str:
    if len(value) * 4 > MAX_ID_BYTES:  # else it fits whatever its characters
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_ID_BYTES:
            raise BadField("id_too_long", field, f"{size:,} bytes, at most {MAX_ID_BYTES:,}")
    return value


def require_id(value: str | None, field: str) -> str:
    """A required id, surrounding whitespace removed (ids are codes, not text), at most
    ``MAX_ID_BYTES`` long."""
    value = (value or "").strip()
    if not value:
        raise BadField("missing_field", field)
    return _bounded(value, field)


def optional_id(value: str | None, field: str = "id") -> str | None:
    value = (value or "").strip()
    return _bounded(value, field) if value else None


def require_name(value: str | None, field: str) -> str:
    """A required name, kept verbatim (no stripping) so odd valid text round-trips exactly."""
    if value is None or not value.strip():
        raise BadField("empty_name", field)
    return value


def parse_ts_ms(text: str, field: str) -> int:
    """UTC epoch ms from ISO 8601; a time without a zone is UTC (as the sources write it)."""
    text = text.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadField("bad_timestamp", field, text) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _MS


def parse_int(text: str | None, field: str, *, required: bool = True) -> int | None:
    """A non-negative integer; ``"123.0"`` is accepted (pandas writes ints so when NaNs exist).

    ``int()`` alone would also take ``"1_000"`` and non-ASCII digits; the pattern keeps
    garbage out of the counts.
    """
    text = (text or "").strip()
    if not text:
        if required:
            raise BadField("missing_field", field)
        return None
    if not _INT.fullmatch(text):
        raise BadField("bad_number", field, text)
    value = int(text.split(".", 1)[0])
    if value < 0:
        raise BadField("bad_number", field, text)
    return value


def parse_float(text: str | None, field: str, *, required: bool = False) -> float | None:
    """A finite float (``nan``, ``inf`` and ``1_0`` are rejected, unlike ``float()``)."""
    text = (text or "").strip()
    if not text:
        if required:
            raise BadField("missing_field", field)
        return None
    if not _FLOAT.fullmatch(text):
        raise BadField("bad_number", field, text)
    return float(text)


def has_surrogate(text: str) -> bool:
    """True for text that cannot be written as UTF-8 (undecodable bytes, lone JSON escapes)."""
    return _SURROGATE.search(text) is not None


def _escape_surrogate(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def raw_text(data: bytes | str) -> str:
    """Quarantine-safe text of a source row: bad bytes shown as ``\\xff``, long rows cut."""
    if isinstance(data, str):
        text = _SURROGATE.sub(_escape_surrogate, data)
    else:
        text = data.decode("utf-8", "backslashreplace")
    if len(text) > MAX_RAW_CHARS:
        text = f"{text[:MAX_RAW_CHARS]}...[{len(text) - MAX_RAW_CHARS} more chars]"
    return text


@dataclass(slots=True)
class Line:
    """One physical line: 1-based number, bytes without BOM or line end, and the line end."""

    number: int
    data: bytes
    end: bytes
    too_long: bool = False

    @property
    def terminated(self) -> bool:
        return bool(self.end)


def iter_lines(path: Path, progress: Progress | None = None, offset: int = 0) -> Iterator[Line]:
    """Stream the lines of a file as bytes, never holding more than one line.

    Bytes, not text, so one undecodable line is one rejected row instead of a crashed read.
    CRLF and LF both end a line; a BOM on the first line is dropped; a line longer than
    ``MAX_LINE_BYTES`` is skipped in chunks and yielded (its head only) with ``too_long`` set.
    ``progress`` gets the cumulative bytes read (plus ``offset``) every 65,536 lines and at
    the end.
    """
    done = 0
    with Path(path).open("rb") as f:
        number = 0
        while True:
            chunk = f.readline(MAX_LINE_BYTES)
            if not chunk:
                break
            number += 1
            done += len(chunk)
            too_long = False
            if not chunk.endswith(b"\n") and len(chunk) == MAX_LINE_BYTES:
                too_long = True
                head = chunk[:MAX_RAW_CHARS]
                while chunk and not chunk.endswith(b"\n"):
                    chunk = f.readline(MAX_LINE_BYTES)
                    done += len(chunk)
                data, end = head, b"\n" if chunk.endswith(b"\n") else b""
            else:
                if chunk.endswith(b"\r\n"):
                    data, end = chunk[:-2], b"\r\n"
                elif chunk.endswith(b"\n"):
                    data, end = chunk[:-1], b"\n"
                else:
                    data, end = chunk, b""
                if number == 1 and data.startswith(BOM):
                    data = data[len(BOM) :]
            yield Line(number, data, end, too_long)
            if progress is not None and number % _PROGRESS_EVERY == 0:
                progress(offset + done)
    if progress is not None:
        progress(offset + done)


def reject(
    sink: TableSink,
    source: str,
    location: int | str,
    terminated: bool,
    exc: BadField,
    raw: bytes | str,
) -> None:
    """Quarantine a row; a bad last line without a line end is reported as ``truncated``."""
    reason = exc.reason if terminated else "truncated"
    sink.reject(
        source=source, location=location, reason=reason, raw=raw_text(raw), field_name=exc.field
    )


def decode(data: bytes) -> str:
    """Strict UTF-8; an invalid byte makes the whole row an ``encoding`` reject."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadField("encoding", None, str(exc)) from None
