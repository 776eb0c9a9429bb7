"""The command line every service shares: ``python -m openloop_<svc> [serve|migrate]``,
and a service's other roles (the ledger's ``seal``), each a process of its own."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from openloop_runtime import migrations
from openloop_runtime.logs import configure_logging
from openloop_runtime.server import ServiceFactory, serve_until_signalled
from openloop_runtime.settings import ServiceSettings
from openloop_runtime.telemetry import configure_tracing

S = TypeVar("S", bound=ServiceSettings)


def run_service(
    *,
    name: str,
    settings_type: type[S],
    factory: Callable[[S], ServiceFactory],
    migrations_dir: Path | None,
    roles: Mapping[str, Callable[[S], ServiceFactory]] | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Serve ``factory``'s services (``serve``, the default), migrate the database
    (``migrate``), or serve another of the service's ``roles`` by its command name: a
    background worker with the same settings, logs, tracing, health service and graceful
    shutdown as the server, serving whatever its factory registers."""
    roles = dict(roles or {})
    parser = argparse.ArgumentParser(prog=f"openloop_{name}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", *roles])
    args = parser.parse_args(argv)
    settings = settings_type()
    configure_logging(name, settings.log_level)
    if args.command == "migrate":
        if migrations_dir is None:
            return
        migrations.upgrade(migrations_dir, settings.database_url)
        logging.getLogger(name).info("migrated")
        return
    build = factory if args.command == "serve" else roles[args.command]
    provider, span_file = configure_tracing(
        name, otlp_endpoint=settings.otlp_endpoint, trace_file=settings.trace_file
    )
    try:
        asyncio.run(serve_until_signalled(f"{name}.openloop.dev", settings, build(settings)))
    finally:
        provider.shutdown()
        if span_file is not None:
            span_file.close()
