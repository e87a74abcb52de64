# The image of every Meridian service (api, central, unit): the role is the command.
# Not built in CI (no Docker engine on the build machines); see infra/k8s/README.md.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY meridian meridian
COPY kubesim kubesim
COPY workflows workflows
COPY activities activities
COPY api api
COPY workers workers
COPY infra/regions infra/regions
RUN pip install --no-cache-dir -c constraints.txt '.[clouds]'
# Two glibc malloc arenas, not up to 8 per core: the workers' threads otherwise keep
# tens of MiB each process has freed (BENCHMARKS.md, "Central worker memory").
ENV MALLOC_ARENA_MAX=2
USER 65534
ENTRYPOINT []
CMD ["meridian", "--help"]
