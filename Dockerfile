# pilotmatch: one image, three services. The command picks the service:
#   docker run IMAGE                     -> gateway  (port 8000)
#   docker run IMAGE serve catalog       -> catalog  (port 8001)
#   docker run IMAGE serve matching      -> matching (port 8002)
#   docker run IMAGE migrate             -> apply the migrations to $DATABASE_URL
# Ports follow `pilotmatch serve`: $PORT or --port, else the service's default.
# tests/test_dockerfile.py lints this file and runs its commands outside Docker.

# --- builder: a virtual environment with the project and its dependencies ---------------
FROM python:3.11.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY services/ ./services/
RUN pip install --no-cache-dir .

# --- runtime: the virtual environment, the migrations, a non-root user -------------------
FROM python:3.11.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="pilotmatch" \
      org.opencontainers.image.description="Matches pilot-test demands with pilot-test platforms and contract manufacturers" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.11-slim-bookworm"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PILOTMATCH_MIGRATIONS=/app/migrations \
    HOST=0.0.0.0

RUN groupadd --system --gid 10001 pilotmatch \
    && useradd --system --uid 10001 --gid pilotmatch --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin pilotmatch \
    && mkdir -p /app/var \
    && chown pilotmatch:pilotmatch /app/var

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY migrations/ ./migrations/
COPY alembic.ini ./

USER 10001:10001

# gateway, catalog, matching
EXPOSE 8000 8001 8002

# Standard library only. The port is the one the running service uses: --port, else $PORT,
# else the default of the service named on PID 1's command line (gateway 8000, catalog 8001,
# matching 8002).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request as u;a=open('/proc/1/cmdline').read().split('\\0');f=[x[7:] for x in a if x.startswith('--port=')]+[a[i+1] for i,x in enumerate(a[:-1]) if x=='--port'];s=next((x for x in a if x in('catalog','matching')),'gateway');p=(f or [os.environ.get('PORT') or {'catalog':'8001','matching':'8002'}.get(s,'8000')])[-1];u.urlopen(f'http://127.0.0.1:{p}/healthz',timeout=3)"]

ENTRYPOINT ["pilotmatch"]
CMD ["serve", "gateway"]
