# Lodestar's processes (`lodestar api`, `lodestar worker`, `lodestar migrate`, …) in one image.
# Built by docker-compose.yml; on its own: docker build -t lodestar . && docker run lodestar --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# What the wheel is built from (pyproject.toml: the package under services/, schemas/ inside it).
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
RUN pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 lodestar \
    && mkdir -p /var/lib/lodestar \
    && chown lodestar:lodestar /var/lib/lodestar
USER lodestar
WORKDIR /home/lodestar
ENV LODESTAR_DATA_DIR=/var/lib/lodestar
VOLUME ["/var/lib/lodestar"]

# 8080: HTTP API (set LODESTAR_API_HOST=0.0.0.0 to reach it from outside); 6066: worker web.
EXPOSE 8080 6066
ENTRYPOINT ["lodestar"]
CMD ["api"]
