"""Writers of small clean and dirty source files for the reader tests.

Each dirty file holds one or more rows per defect the readers must survive; the tests assert
the exact numbers, so a change here must change the expected counts in ``test_readers.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BOM = b"\xef\xbb\xbf"

# Odd but valid names: every one must reach the Parquet tables byte for byte.
ODD_NAMES: tuple[str, ...] = (
    "Sigur Rós 🎸👩🏽‍🎤",
    "مشروع ليلى",
    "\u05e9\u05dc\u05d5\u05dd \u202bmixed\u202c",
    "Beyonce\u0301 Zalgo\u0336\u0335",
    "He said \"hi\" & 'bye'",
    "$HOME ${jndi:ldap://x} $1",
    "{braces} [brackets] <tags>",
    "`backticks` \\ backslash",
    "'}) MATCH (n) DETACH DELETE n //",
    '"}) MATCH (n) DETACH DELETE n //',
    "  leading and trailing  ",
    "semi;colon, comma",
)
# Valid only where a quoted field or JSON string can hold a line break (Kaggle, MPD).
NEWLINE_NAME = "line one\nline two"

MBID_ARTIST = "f1b1cf71-bd35-4e99-8624-24a6e15f133a"
MBID_TRACK = "a7f4a5fb-5a4f-4b0c-9c4e-3d1b4b2f6e11"


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _write(path: Path, lines: list[bytes], *, end: bytes = b"\n", bom: bool = False) -> Path:
    """Join lines with ``end``; a line given with its own end keeps it (mixed endings)."""
    data = b"".join(x if x.endswith(b"\n") else x + end for x in lines)
    path.write_bytes((BOM if bom else b"") + data)
    return path


# -- sessions folder ------------------------------------------------------------------------


def write_sessions_clean(folder: Path) -> Path:
    """Only the required file: 3 users, 6 plays, 4 songs, 2 artists, no defects."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        "user_id,track_id,artist_id,timestamp,ms_played,track_duration_ms",
        "U1,T1,A1,2024-01-01T00:00:00,200000,240000",
        "U1,T2,A1,2024-01-01T00:04:00,10000,240000",
        "U2,T3,A2,2024-01-02T08:00:00,180000,180000",
        "U2,T1,A1,2024-01-02T08:03:00,240000,240000",
        "U3,T4,A2,2024-01-03T12:00:00.123456,50000,200000",
        "U3,T4,A2,2024-01-03T12:01:00,70000,200000",
    ]
    _write(folder / "synthetic_sessions.csv", [r.encode() for r in rows])
    return folder


def write_sessions_dirty(folder: Path) -> Path:
    """Every companion file, each with defects; see ``test_sessions_dirty`` for the counts."""
    folder.mkdir(parents=True, exist_ok=True)
    sessions = [
        b"user_id,track_id,artist_id,timestamp,ms_played,track_duration_ms",
        b"U1,T1,A1,2024-01-01T00:00:00,200000,240000",
        b"U1,T2,A1,2024-01-01T00:05:00.250,10000,240000",
        b"U2,T3,A2,2024-01-01T10:00:00,30000,",
        b"U2,T99,,2024-01-01T10:10:00+02:00,5000,0",
        b"U1,T1,A1,2024-01-01T00:10:00Z,1000,240000",
        b"U1,T1,A1,2024-01-01T00:00:00,1000",
        b"U1,T1,A1,2024-01-01T00:00:00,1000,2000,extra",
        b"U1,T1,A1,2024-13-45T99:00:00,1000,2000",
        b"U1,T1,A1,yesterday,1000,2000",
        b"U1,T1,A1,2024-01-01T00:00:00,abc,2000",
        b"U1,T1,A1,2024-01-01T00:00:00,-5,2000",
        b",T1,A1,2024-01-01T00:00:00,1000,2000",
        b"U1,T\xff1,A1,2024-01-01T00:00:00,1000,2000",
        b"",
    ]
    _write(folder / "synthetic_sessions.csv", sessions, end=b"\r\n", bom=True)
    with (folder / "synthetic_sessions.csv").open("ab") as f:
        f.write(b"U3,T1,A1,2024-01-0")  # cut short: no line end

    songs = [b"track_id,track_name,artist_id,artist_name,duration_ms,popularity"]
    for i, name in enumerate(ODD_NAMES, start=1):
        artist = ("A1", "Ignored name") if i % 3 == 1 else ("A2", "x")
        if i == 12:
            artist = ("A5", "Artist from songs.csv")
        row = [f"T{i}", _csv_field(name), artist[0], artist[1], "240000", "0.5"]
        songs.append(",".join(row).encode())
    songs += [
        b"T20,,A1,Artist,1000,0.1",
        b"T21,   ,A1,Artist,1000,0.1",
        b"T22,Name,A1,Artist,12a,0.1",
        b"T23,Name,A1,Artist,1000,nan",
        b"T24,Bad\xc3(,A1,Artist,1000,0.1",
        b"T25,Name",
    ]
    _write(folder / "synthetic_songs.csv", songs)

    artists = [
        "artist_id,artist_name,popularity",
        "A1,مشروع ليلى,0.3",
        "A2,'}) MATCH (n) DETACH DELETE n //,0.7",
        "A3,,0.1",
    ]
    _write(folder / "synthetic_artists.csv", [r.encode() for r in artists], bom=True)
    text_files = {
        "synthetic_genres.csv": [
            "genre_id,genre_name,popularity",
            "G1,Pop,0.9",
            'G2,"Rock, Roll",0.5',
            "G3,,0.1",
        ],
        "synthetic_song_genres.csv": [
            "track_id,genre_id,genre_name",
            "T1,G1,Pop",
            "T2,G4,Jazz",
            ",G1,Pop",
        ],
        "synthetic_artist_genres.csv": ["artist_id,genre_id,genre_name", 'A1,G2,"Rock, Roll"'],
        "synthetic_users.csv": [
            "user_id,user_type,activity_level",
            "U1,regular,0.5",
            "U2,casual,abc",
        ],
        "synthetic_user_genre_preferences.csv": [
            "user_id,genre_id,genre_name,affinity_score",
            "U1,G1,Pop,0.9",
            "U1,G2,Rock,0.2",
            "U2,G1,Pop,x",
        ],
    }
    for name, rows in text_files.items():
        _write(folder / name, [r.encode() for r in rows])
    return folder


# -- Last.fm ----------------------------------------------------------------------------------


def lastfm_line(user: str, ts: str, artist: str, track: str, amb: str = "", tmb: str = "") -> bytes:
    return "\t".join([user, ts, amb, artist, tmb, track]).encode()


def write_lastfm_clean(path: Path) -> Path:
    """6 plays of 2 users, newest first as in the real file: 4 songs, 3 artists."""
    rows = [
        lastfm_line("user_000001", "2009-05-04T23:08:57Z", "Deep Dish", "Famous", MBID_ARTIST),
        lastfm_line("user_000001", "2009-05-04T23:04:00Z", "Deep Dish", "Other", MBID_ARTIST),
        lastfm_line("user_000001", "2009-05-04T22:58:00Z", "Air", "La femme", tmb=MBID_TRACK),
        lastfm_line("user_000002", "2009-05-03T10:00:00Z", "Air", "La femme", tmb=MBID_TRACK),
        lastfm_line("user_000002", "2009-05-03T09:55:00Z", "Björk", "Jóga"),
        lastfm_line("user_000002", "2009-05-02T09:55:00Z", "Björk", "Jóga"),
    ]
    return _write(path, rows)


def write_lastfm_dirty(path: Path) -> Path:
    """BOM, mixed CRLF, raw quotes, odd names, every defect; counts in ``test_lastfm_dirty``."""
    rows = [
        lastfm_line(
            "user_000001", "2009-05-04T23:08:57Z", "Deep Dish", "Famous", MBID_ARTIST, MBID_TRACK
        )
        + b"\r\n",
        lastfm_line(
            "user_000001", "2009-05-04T13:54:10Z", 'Guns "N" Roses', '"Sweet" Child o\' Mine'
        )
        + b"\r\n",
    ]
    for i, name in enumerate(ODD_NAMES):
        rows.append(lastfm_line("user_000002", f"2009-05-03T10:{i:02d}:00Z", name, name))
    rows += [
        b"user_000003\t2009-05-04T23:08:57Z\t\tA\tT",
        b"user_000003\t2009-05-04T23:08:57Z\t\tA\t\tT\textra",
        lastfm_line("user_000003", "2009-05-04 nonsense", "A", "T"),
        lastfm_line("user_000003", "2009-05-04T23:08:57Z", "", "T"),
        lastfm_line("user_000003", "2009-05-04T23:08:57Z", "A", "   "),
        lastfm_line("", "2009-05-04T23:08:57Z", "A", "T"),
        lastfm_line("user_000003", "2009-05-04T23:08:57Z", "A", "T", "not-a-uuid"),
        b"user_000003\t2009-05-04T23:08:57Z\t\tBad \xff\xfe\t\tX",
        b"",
    ]
    _write(path, rows, bom=True)
    with path.open("ab") as f:
        f.write(b"user_000003\t2009-05-0")
    return path


# -- Kaggle -----------------------------------------------------------------------------------


def kaggle_line(*fields: str) -> bytes:
    """A row as the real file writes it: every field quoted, a space after each comma."""
    return ", ".join('"' + f.replace('"', '""') + '"' for f in fields).encode()


KAGGLE_HEADER = kaggle_line("user_id", "artistname", "trackname", "playlistname")


def write_kaggle_clean(path: Path) -> Path:
    """2 users, 2 playlists, 4 playlist tracks, 3 songs, 2 artists."""
    rows = [
        KAGGLE_HEADER,
        kaggle_line("u1", "Band", "Song A", "Mix"),
        kaggle_line("u1", "Band", "Song B", "Mix"),
        kaggle_line("u1", "Artist, With Comma", 'Track "Quoted"', "Mix"),
        kaggle_line("u2", "Band", "Song A", "Chill"),
    ]
    return _write(path, rows)


def write_kaggle_dirty(path: Path) -> Path:
    """BOM, CRLF, multi-line fields, a stray quote, every defect; counts in the test."""
    rows = [KAGGLE_HEADER, b'"u1", "Art"ist", "T", "P"']
    rows += [kaggle_line("u1", name, name, "Odd 🎶") for name in ODD_NAMES]
    rows += [
        kaggle_line("u2", "Band", "Song A", "Mix"),
        kaggle_line("u2", "Band", "Song B", "Mix"),
        kaggle_line("u2", "band", "  SONG  a", "MIX"),
        kaggle_line("u2", "Artist, With Comma", 'Track "Quoted"', "Road Trip"),
        kaggle_line("u2", "Band", NEWLINE_NAME, "Road Trip"),
        kaggle_line("u2", "Band", "a\nb\nc", "Road Trip"),
        kaggle_line("u3", "A", "T"),
        kaggle_line("u3", "A", "T", "P", "extra"),
        kaggle_line("u3", "", "T", "P"),
        kaggle_line("u3", "A", "  ", "P"),
        kaggle_line("u3", "A", "T", ""),
        kaggle_line("", "A", "T", "P"),
        b'"u3", "A\xff", "T", "P"',
        b"",
    ]
    _write(path, rows, end=b"\r\n", bom=True)
    with path.open("ab") as f:
        f.write(b'"u9", "A", "unterminated')
    return path


FEATURES_HEADER = (
    "id,name,album,album_id,artists,artist_ids,track_number,disc_number,explicit,danceability,"
    "energy,key,loudness,mode,speechiness,acousticness,instrumentalness,liveness,valence,tempo,"
    "duration_ms,time_signature,year,release_date"
)


def features_line(
    name: str, artists: str, danceability: str = "0.5", duration: str = "200000"
) -> bytes:
    fields = [
        "id1", name, "Album", "al1", artists, "['x']", "1", "1", "False",
        danceability, "0.6", "5", "-7.5", "1", "0.04", "0.1", "0.0", "0.2", "0.7", "120.0",
        duration, "4.0", "2001", "2001-01-01",
    ]  # fmt: skip
    return ",".join(_csv_field(f) for f in fields).encode()


def write_features(path: Path) -> Path:
    """7 rows: 2 kept, 1 duplicate, 2 for unknown songs, 1 bad number, 1 bad list."""
    rows = [
        FEATURES_HEADER.encode(),
        features_line("Song A", "['Band']"),
        features_line("Song A", "['Band', 'Other']", danceability="0.9"),
        features_line("Song B", "['Band']", danceability="abc"),
        features_line("Unwanted", "['Nobody']", danceability="oops"),
        features_line('Track "Quoted"', "['Artist, With Comma']", "0.25", "123000"),
        features_line("Patience", '["Guns N\' Roses"]'),
        features_line("Song A", "not a list"),
    ]
    return _write(path, rows)


# -- MPD --------------------------------------------------------------------------------------


def uri(kind: str, key: object) -> str:
    """A well-formed Spotify URI: ``spotify:<kind>:`` and 22 base-62 characters."""
    return f"spotify:{kind}:{key!s:0>22}"


def mpd_track(pos: int, n: int, name: str | None = None, artist: str | None = None) -> dict:
    return {
        "pos": pos,
        "artist_name": artist or f"Artist {n % 3}",
        "track_uri": uri("track", n),
        "artist_uri": uri("artist", n % 3) if artist is None else uri("artist", f"odd{n}"),
        "track_name": name or f"Track {n}",
        "album_uri": uri("album", n % 2),
        "duration_ms": 200000 + n,
        "album_name": f"Album {n % 2}",
    }


def mpd_playlist(pid: int, tracks: list[dict], name: str | None = None, **extra: Any) -> dict:
    playlist = {
        "name": name if name is not None else f"Playlist {pid}",
        "collaborative": "false",
        "pid": pid,
        "modified_at": 1493424000,
        "num_tracks": len(tracks),
        "num_albums": 2,
        "num_followers": 1,
        "tracks": tracks,
    }
    playlist.update(extra)
    return playlist


def _slice(start: int, end: int) -> str:
    return f"mpd.slice.{start}-{end}.json"


def _info(start: int, end: int) -> dict:
    return {
        "generated_on": "2017-12-03 08:41:42.057563",
        "slice": f"{start}-{end}",
        "version": "v1",
    }


def write_mpd_clean(folder: Path) -> Path:
    """2 slices, 4 playlists, 10 playlist tracks, 6 distinct songs, 3 artists, 2 albums."""
    folder.mkdir(parents=True, exist_ok=True)
    slices = {
        (0, 1): [
            mpd_playlist(0, [mpd_track(0, 1), mpd_track(1, 2), mpd_track(2, 3)]),
            mpd_playlist(1, [mpd_track(0, 1), mpd_track(1, 4)]),
        ],
        (2, 3): [
            mpd_playlist(2, [mpd_track(0, 5), mpd_track(1, 6), mpd_track(2, 1)]),
            mpd_playlist(3, [mpd_track(0, 2), mpd_track(1, 3)]),
        ],
    }
    for (a, b), playlists in slices.items():
        doc = {"info": _info(a, b), "playlists": playlists}
        (folder / _slice(a, b)).write_text(json.dumps(doc, indent=4), encoding="utf-8")
    return folder


def write_mpd_dirty(folder: Path) -> Path:
    """A valid slice with bad playlists and tracks, one with invalid JSON, one cut short (both
    rejected whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    odd_tracks = [
        mpd_track(i, 100 + i, name=name, artist=name)
        for i, name in enumerate((*ODD_NAMES, NEWLINE_NAME))
    ]
    bad_tracks = [
        mpd_track(0, 1),
        {k: v for k, v in mpd_track(1, 2).items() if k != "track_uri"},
        mpd_track(2, 3, name="  "),
        {**mpd_track(3, 4), "duration_ms": "abc"},
        "not a track",
        mpd_track(5, 5, name="bad @@BAD@@ byte"),
        mpd_track(6, 6, name="lone @@SURROGATE@@"),
        {**mpd_track(7, 7), "track_uri": "spotify:track:123"},
        {**mpd_track(8, 8), "album_uri": "spotify:playlist:0000000000000000000008"},
    ]
    playlists = [
        mpd_playlist(0, odd_tracks, name=ODD_NAMES[0]),
        {k: v for k, v in mpd_playlist(1, [mpd_track(0, 1)]).items() if k != "name"},
        mpd_playlist(2, [mpd_track(0, 1)], name="   "),
        mpd_playlist(3, bad_tracks),
        mpd_playlist(0, [mpd_track(0, 9)], name="duplicate pid"),
        mpd_playlist(4, [mpd_track(0, 1)], modified_at="yesterday"),
        mpd_playlist(5, [mpd_track(0, 1), mpd_track(1, 2)], num_tracks=3),
    ]
    doc = {"info": _info(0, 999), "playlists": playlists}
    text = json.dumps(doc, indent=2, ensure_ascii=False).replace("\n", "\r\n")
    text = text.replace("@@SURROGATE@@", "\\ud800")
    data = BOM + text.encode("utf-8").replace(b"@@BAD@@", b"\xff\xfe")
    (folder / _slice(0, 999)).write_bytes(data)

    def dump(pl: dict) -> str:
        return json.dumps(pl, indent=2, ensure_ascii=False)

    head = '{"info": ' + json.dumps(_info(1000, 1999)) + ', "playlists": [\n'
    damaged = dump(mpd_playlist(1001, [mpd_track(0, 1), mpd_track(1, 2)]))
    damaged = damaged.replace('"name": "Playlist 1001",', '"name" "Playlist 1001",')
    good = [mpd_playlist(p, [mpd_track(0, p), mpd_track(1, p + 1)]) for p in (1000, 1002)]
    body = ",\n".join([dump(good[0]), damaged, dump(good[1])])
    (folder / _slice(1000, 1999)).write_text(head + body + "\n]}\n", encoding="utf-8")

    head = '{"info": ' + json.dumps(_info(2000, 2999)) + ', "playlists": [\n'
    cut = dump(mpd_playlist(2001, [mpd_track(0, 1), mpd_track(1, 2)]))
    body = dump(mpd_playlist(2000, [mpd_track(0, 7), mpd_track(1, 8)])) + ",\n" + cut[:150]
    (folder / _slice(2000, 2999)).write_text(head + body, encoding="utf-8")
    return folder


def write_lastfm_big(path: Path, lines: int, users: int = 50, songs: int = 1000) -> Path:
    """A large, valid Last.fm file for the streaming (peak memory) test."""
    with path.open("wb") as f:
        for i in range(lines):
            user = f"user_{i % users:06d}"
            # one play a minute back from 2001-09-09: no two lines repeat a scrobble
            ts = datetime.fromtimestamp(1_000_000_000 - i * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            n = (i * 7919) % songs
            f.write(lastfm_line(user, ts, f"Artist {n % 97}", f"Track {n}") + b"\n")
    return path


# -- long values (issue 16: one 10,000-character name stopped a whole load) ------------------


def long_name(kind: str, length: int) -> str:
    """A valid name of exactly ``length`` characters, mixing scripts and 4-byte emoji (so its
    UTF-8 is longer still), distinct per ``kind``."""
    unit = f"{kind} Ünïcødé مشروع 🎸👩🏽‍🎤 "
    return (unit * (length // len(unit) + 1))[:length]


LONG_LENGTHS = (10_000, 100_000)


def long_names() -> dict[str, str]:
    """``{"<kind>_<length>": name}`` for artist, track, playlist and genre names."""
    return {
        f"{kind}_{n}": long_name(kind, n)
        for kind in ("artist", "track", "playlist", "genre")
        for n in LONG_LENGTHS
    }


def write_long_names(source: str, tmp: Path) -> Path:
    """A small valid input of ``source`` whose artist, track (and playlist or genre, where the
    format has them) names are 10,000 and 100,000 characters long; returns its path."""
    names = long_names()
    a, b = LONG_LENGTHS
    if source == "lastfm":
        rows = [
            lastfm_line("user_000001", "2009-05-04T23:08:57Z", names[f"artist_{a}"],
                        names[f"track_{a}"]),
            lastfm_line("user_000001", "2009-05-04T23:04:00Z", names[f"artist_{b}"],
                        names[f"track_{b}"]),
            lastfm_line("user_000002", "2009-05-03T10:00:00Z", "Air", "La femme"),
        ]  # fmt: skip
        return _write(tmp / "plays.tsv", rows)
    if source == "kaggle":
        rows = [
            KAGGLE_HEADER,
            kaggle_line("u1", names[f"artist_{a}"], names[f"track_{a}"], names[f"playlist_{a}"]),
            kaggle_line("u1", names[f"artist_{b}"], names[f"track_{b}"], names[f"playlist_{a}"]),
            kaggle_line("u2", "Band", "Song A", names[f"playlist_{b}"]),
        ]
        return _write(tmp / "spotify_dataset.csv", rows)
    if source == "mpd":
        folder = tmp / "mpd"
        folder.mkdir(parents=True, exist_ok=True)
        tracks = [
            mpd_track(0, 1, name=names[f"track_{a}"], artist=names[f"artist_{a}"]),
            mpd_track(1, 2, name=names[f"track_{b}"], artist=names[f"artist_{b}"]),
        ]
        tracks[0]["album_name"] = names[f"playlist_{b}"]
        doc = {
            "info": _info(0, 1),
            "playlists": [
                mpd_playlist(0, tracks, name=names[f"playlist_{a}"]),
                mpd_playlist(1, [mpd_track(0, 3)], name=names[f"playlist_{b}"]),
            ],
        }
        (folder / _slice(0, 1)).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return folder
    if source == "sessions":
        folder = tmp / "sessions"
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "synthetic_sessions.csv": [
                "user_id,track_id,artist_id,timestamp,ms_played,track_duration_ms",
                "U1,T1,A1,2024-01-01T00:00:00,200000,240000",
                "U1,T2,A2,2024-01-01T00:04:00,10000,240000",
                "U2,T1,A1,2024-01-02T08:00:00,180000,240000",
            ],
            "synthetic_songs.csv": [
                "track_id,track_name,artist_id,artist_name,duration_ms,popularity",
                f"T1,{_csv_field(names[f'track_{a}'])},A1,x,240000,0.5",
                f"T2,{_csv_field(names[f'track_{b}'])},A2,x,240000,0.5",
            ],
            "synthetic_artists.csv": [
                "artist_id,artist_name,popularity",
                f"A1,{_csv_field(names[f'artist_{a}'])},0.3",
                f"A2,{_csv_field(names[f'artist_{b}'])},0.7",
            ],
            "synthetic_genres.csv": [
                "genre_id,genre_name,popularity",
                f"G1,{_csv_field(names[f'genre_{a}'])},0.9",
                f"G2,{_csv_field(names[f'genre_{b}'])},0.5",
            ],
            "synthetic_song_genres.csv": [
                "track_id,genre_id,genre_name",
                "T1,G1,x",
                "T2,G2,x",
            ],
        }
        for name, lines in files.items():
            _write(folder / name, [x.encode() for x in lines])
        return folder
    raise ValueError(f"no long-name writer for {source}")


def write_lastfm_every_defect(path: Path) -> Path:
    """A Last.fm-1K file with every defect the issue names: 12 lines read (one of them cut
    short), 2 repeated scrobbles, a 10,000-character artist and track name, a user id of
    2,000 bytes, a bad MBID, a bad timestamp, a wrong column count. Counts in the test."""
    long_artist, long_track = long_name("artist", 10_000), long_name("track", 10_000)
    rows = [
        lastfm_line("user_000001", "2009-05-04T23:08:57Z", "Deep Dish", "Famous", MBID_ARTIST),
        lastfm_line("user_000001", "2009-05-04T23:08:57Z", "Deep Dish", "Famous", MBID_ARTIST),
        lastfm_line("user_000001", "2009-05-04T23:04:00Z", long_artist, long_track),
        lastfm_line("user_000001", "2009-05-04T23:04:00Z", long_artist, long_track),
        lastfm_line("user_000001", "2009-05-04T22:58:00Z", "Air", "La femme", tmb=MBID_TRACK),
        lastfm_line("user_000002", "2009-05-03T10:00:00Z", "Air", "La femme", tmb=MBID_TRACK),
        lastfm_line("user_000002", "2009-05-03T09:55:00Z", "Björk", "Jóga"),
        lastfm_line("u" * 2_000, "2009-05-03T09:50:00Z", "Björk", "Jóga"),
        lastfm_line("user_000002", "2009-05-03T09:45:00Z", "Björk", "Jóga", amb="not-an-mbid"),
        lastfm_line("user_000002", "yesterday", "Björk", "Jóga"),
        b"user_000002\t2009-05-03T09:40:00Z\tonly four fields",
    ]
    _write(path, rows)
    with path.open("ab") as f:
        f.write(b"user_000003\t2009-05-01T00:0")  # cut short: no line end
    return path
