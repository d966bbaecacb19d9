# Kairos worker image: slim Python, non-root, `kairos worker` as the entry point.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KAIROS_DATA_DIR=/var/lib/kairos
RUN useradd --create-home --uid 10001 kairos \
    && mkdir -p /var/lib/kairos && chown kairos /var/lib/kairos
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY connectors ./connectors
COPY rules ./rules
RUN pip install --no-cache-dir -e .

USER kairos
EXPOSE 9464
ENTRYPOINT ["kairos"]
CMD ["worker"]
