# Every nameko service's image, from one file: the service is a build argument. Build from the repository
# root (it needs common/ and constraints.txt), e.g.
#   docker build -f deploy/service.Dockerfile --build-arg SERVICE=routing --build-arg PACKAGE=helpdesk_routing \
#                --build-arg METRICS_PORT=9102 -t helpdesk-routing .
# docker-compose.yml passes the arguments for each service. A new service needs only its three arguments.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# SERVICE: its folder under services/; PACKAGE: its import package; METRICS_PORT: where /metrics answers.
ARG SERVICE
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies change less often than code: the constraints file first keeps that layer cached.
COPY constraints.txt ./
COPY common/ common/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN test -n "${SERVICE}" && /opt/venv/bin/pip install -c constraints.txt "./common[postgres]" "./services/${SERVICE}"

FROM ${PYTHON_IMAGE}
ARG SERVICE
ARG PACKAGE
ARG METRICS_PORT
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HELPDESK_METRICS_ADDR=0.0.0.0 \
    HELPDESK_SERVICE_MODULE=${PACKAGE}.service \
    HELPDESK_SERVICE_CONFIG=/app/services/${SERVICE}/config.yaml \
    HELPDESK_SERVICE_METRICS_PORT=${METRICS_PORT} \
    HELPDESK_TICKETS_METRICS_PORT=${METRICS_PORT} \
    HELPDESK_ROUTING_METRICS_PORT=${METRICS_PORT} \
    HELPDESK_INTAKE_METRICS_PORT=${METRICS_PORT} \
    HELPDESK_KB_METRICS_PORT=${METRICS_PORT}
# (Each service reads its own HELPDESK_<NAME>_METRICS_PORT, which must differ when all run on one host, as
# with `make run`; in its own container each gets the image's port. A new service adds its name above.)# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it. /data holds what a service keeps on disk
# (intake's attachments, kb_search's embedded index): mount a volume there.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin helpdesk \
 && mkdir -p /data && chown 10001 /data
VOLUME /data
COPY --from=build /opt/venv /opt/venv
# The package is installed in the venv; only the config file is read from the source tree.
COPY services/${SERVICE}/config.yaml /app/services/${SERVICE}/config.yaml
WORKDIR /app
USER 10001
EXPOSE ${METRICS_PORT}
# The metrics server runs inside the nameko process: if it answers, the process is alive.
# Loopback works whatever METRICS_ADDR is.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ['HELPDESK_SERVICE_METRICS_PORT'], timeout=4)"]
# exec: nameko is PID 1 and gets SIGTERM, finishing running workers before it stops.
CMD ["sh", "-c", "exec nameko run \"$HELPDESK_SERVICE_MODULE\" --config \"$HELPDESK_SERVICE_CONFIG\""]
