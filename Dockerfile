# The spotify-engine API (`spotify-engine serve`) for docker compose; Neo4j runs in its own service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY spotify_engine ./spotify_engine
COPY ingest ./ingest
COPY graphdb ./graphdb
COPY gnn ./gnn
COPY api ./api
COPY cypher ./cypher
RUN pip install ".[fast]" && useradd --create-home --uid 1000 app
USER app

ENV SPOTIFY_ENGINE_API_HOST=0.0.0.0 SPOTIFY_ENGINE_API_PORT=8000 SPOTIFY_ENGINE_RUNS_DIR=/app/runs
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"
CMD ["spotify-engine", "serve"]
