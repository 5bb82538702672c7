FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY erysta ./erysta
COPY fulfillment ./fulfillment
COPY tasks ./tasks
COPY workers ./workers
COPY sandbox ./sandbox
COPY cli ./cli
RUN pip install . && useradd --create-home --uid 10001 erysta

USER erysta
# The worker runs as PID 1 in exec form, so that `docker stop` sends SIGTERM to Celery
# itself and its soft shutdown can finish the tasks in hand.
CMD ["celery", "-A", "workers.app", "worker", "-n", "worker@%h", "--loglevel=INFO", \
     "-Q", "erysta.place,erysta.poll,erysta.deliver,erysta.maintenance"]
