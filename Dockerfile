# syntax=docker/dockerfile:1
# One image for every role: the container command picks it
# (`sync`, `store` or `client`, the subcommands of the `cluster` script).

# Pinned to an exact patch release; bump it on purpose, not by pulling.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Build stage: install the package and its dependencies into a virtual
# environment. Only that environment is copied into the final image.
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
RUN python -m venv /opt/venv

# README* may be absent; pyproject.toml makes the COPY valid either way.
COPY pyproject.toml README* ./
COPY src ./src
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes pip

# Final stage: the interpreter of the base image, the virtual environment
# and a non-root user, nothing else.
FROM ${PYTHON_IMAGE}

# The uid and gid match runAsUser and fsGroup in the Kubernetes manifests.
# /data is created owned by that user so that a new named Docker volume
# mounted there inherits the ownership and the node can write to it.
RUN groupadd --system --gid 10001 cluster \
    && useradd --system --uid 10001 --gid cluster --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin cluster \
    && install --directory --owner=cluster --group=cluster --mode=0755 /data

COPY --from=build /opt/venv /opt/venv

# PYTHONDONTWRITEBYTECODE: the root file system is read-only in the
# manifests. PORT and CLUSTER_PORT are the defaults every manifest assumes.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=5000 \
    CLUSTER_PORT=6000 \
    DATA_DIR=/data

USER 10001:10001
WORKDIR /data
EXPOSE 5000 6000

# Shell form so that ${PORT} expands at run time. A client serves no port,
# so the Compose file disables this check for clients.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD cluster health --port "${PORT}" || exit 1

ENTRYPOINT ["cluster"]
CMD ["sync"]
