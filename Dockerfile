# The runner image: migrations (alembic), the pipeline and the scheduler service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY alembic.ini ./
COPY alembic ./alembic
COPY procedures ./procedures
COPY generator ./generator
COPY runner ./runner

RUN useradd --system --uid 10001 --no-create-home warehouse \
    && mkdir -p /app/data /app/reports && chown warehouse /app/reports
USER warehouse

# DATABASE_URL must be set (docker-compose.yml does); the embedded cluster is for laptops.
CMD ["python", "-m", "runner", "schedule", "--every", "15m"]
