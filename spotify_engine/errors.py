"""Typed errors with one root; the CLI and the API render them, nothing else does.

    SpotifyEngineError
    ├── ConfigError                 bad or missing settings
    ├── ServerError                 the local Neo4j server
    │   ├── JavaNotFound            no java, or not Java 17+
    │   ├── PortInUse               bolt or http port taken by another process
    │   ├── DownloadFailed          Maven could not fetch the Neo4j artifacts
    │   ├── ServerStartFailed       the server died or never answered; carries the log tail
    │   └── ServerNotInstalled      start before install
    ├── GraphError                  talking to Neo4j
    │   ├── GraphUnavailable        cannot reach the server (down, refused, timed out)
    │   ├── AuthFailed              wrong user or password
    │   └── QueryFailed             a statement was rejected (syntax, constraint, ...)
    ├── IngestError                 a source cannot be read at all (missing file, no rows)
    ├── NotFound                    unknown user, song, run ...
    │   └── RunNotFound             no run with that id under the run root (also a LookupError)
    ├── ModelError                  bad model input or unusable output (also a ValueError)
    │   ├── NotFittedError          score/recommend called before fit
    │   ├── FitFailed               a linear solve failed (EASE^R: not positive definite)
    │   └── TrainingDiverged        loss or embeddings became NaN/inf (also a RuntimeError)
    └── AccessDenied                a write without a valid API key
        ├── CredentialsMissing      no key given (HTTP 401)
        └── CredentialsRefused      wrong key, or writes are not enabled (HTTP 403)

Each message says what went wrong and what to do, in one line. Settings and errors are the
ground floor: this module imports nothing of the project.
"""

from __future__ import annotations


class SpotifyEngineError(Exception):
    """Root of every error this project raises on purpose."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(SpotifyEngineError):
    pass


class ServerError(SpotifyEngineError):
    pass


class JavaNotFound(ServerError):
    hint = "install a Java 17+ JDK or set SPOTIFY_ENGINE_JAVA_HOME"


class PortInUse(ServerError):
    hint = "stop the other process or choose SPOTIFY_ENGINE_BOLT_PORT / SPOTIFY_ENGINE_HTTP_PORT"


class DownloadFailed(ServerError):
    hint = "check that Maven Central is reachable, then run `spotify-engine neo4j install` again"


class ServerStartFailed(ServerError):
    hint = "see `spotify-engine neo4j logs`"


class ServerNotInstalled(ServerError):
    hint = "run `spotify-engine neo4j install` first"


class GraphError(SpotifyEngineError):
    pass


class GraphUnavailable(GraphError):
    hint = "start it with `spotify-engine neo4j start` or check NEO4J_URI"


class AuthFailed(GraphError):
    hint = "check NEO4J_USER / NEO4J_PASSWORD"


class QueryFailed(GraphError):
    pass


class IngestError(SpotifyEngineError):
    pass


class NotFound(SpotifyEngineError):
    pass


class RunNotFound(NotFound, LookupError):
    hint = "see `spotify-engine models list`"


class ModelError(SpotifyEngineError, ValueError):
    pass


class NotFittedError(ModelError):
    hint = "call fit() first"


class FitFailed(ModelError, ArithmeticError):
    hint = "raise the regularisation l2, or fit in float64"


class TrainingDiverged(ModelError, RuntimeError):
    hint = "lower the learning rate or check the input features"


class AccessDenied(SpotifyEngineError):
    pass


class CredentialsMissing(AccessDenied):
    hint = "send the key in the X-API-Key header"


class CredentialsRefused(AccessDenied):
    pass
