# One image for all six services; SERVICE (or the first argument) picks which one runs.
#   docker build -t retail .
#   docker run -e SERVICE=products -p 8002:8002 retail
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 retail
WORKDIR /app
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data \
    HOST=0.0.0.0
RUN mkdir -p /data && chown retail /data
USER retail
VOLUME ["/data"]
ENTRYPOINT ["retail", "serve"]
