FROM python:3.11-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Editable install: migrations are read from /app/alembic next to the package.
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY broker ./broker
COPY catalog ./catalog
RUN pip install --no-cache-dir -e .

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
# Serving never migrates PostgreSQL: with several replicas, `broker db upgrade` runs once, before
# them (docker-compose.yml's `migrate` service). On the embedded SQLite default, serve migrates.
CMD ["broker", "serve", "--host", "0.0.0.0", "--port", "8000"]
