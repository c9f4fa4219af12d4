# syntax=docker/dockerfile:1
# Stage 1 builds the broker's wheel and those of its dependencies; stage 2 installs them (not
# editable: the migrations ship inside the package) and runs as an unprivileged user.
FROM python:3.11-slim AS build

WORKDIR /src
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY catalog ./catalog
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The wheels are mounted for the install only, so they never become a layer of the image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/data_resource_broker-*.whl
# The release store's mount point belongs to the user, so a fresh named volume is writable; the
# home directory is the working directory, where the embedded SQLite default keeps its file.
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/broker broker \
    && mkdir -p /var/lib/broker/releases \
    && chown -R broker:broker /var/lib/broker
USER broker
WORKDIR /var/lib/broker

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
# Serving never migrates PostgreSQL: with several replicas, `broker db upgrade` runs once, before
# them (docker-compose.yml's `migrate` service). On the embedded SQLite default, serve migrates.
CMD ["broker", "serve", "--host", "0.0.0.0", "--port", "8000"]
