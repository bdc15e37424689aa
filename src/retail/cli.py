"""The `retail` command: run the services and do the operator's chores.

retail up                         every service on its port, restarted if it dies; Ctrl-C
                                  stops them all (retail/supervisor.py)
retail serve <service> [--port]   one service
retail create-admin --email E --password P
retail reindex                    rebuild the search index from the feeds
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from retail import importing
from retail.kernel.observability import configure_logging
from retail.kernel.settings import (
    SERVICE_PORTS,
    Settings,
    ensure_development_secret,
    fresh_metrics_dir,
)
from retail.supervisor import MIGRATIONS, POSTGRES, PRELOAD, Supervisor, preload

STARTUP_FAILURE = 3  # uvicorn's exit code when the app does not start
# Idle keep-alive connections are kept longer than any client of ours keeps them (the peer
# client drops them after 4 s) and than common proxies do (60 s): the side that closes an
# idle connection must be the client, or it may send a request just as the server closes.
SERVER_KEEPALIVE_SECONDS = 65
LISTEN_BACKLOG = 2048
# The standard library's loop, not uvloop: libuv (since 1.45) accepts one connection per
# loop iteration, so while the loop is saturated a new connection waits behind dozens of
# rounds of the connections already open (a first request waited up to 1.9 s at
# concurrency 64, where asyncio's loop served it in the first round). asyncio accepts every
# waiting connection at once. docs/performance.md, round 6, has the measurement.
EVENT_LOOP = "asyncio"


def available_services() -> list[str]:
    """The services whose package has a `main` module, in port order."""
    return [s for s in SERVICE_PORTS if importlib.util.find_spec(f"retail.{s}.main") is not None]


class QuietServer(uvicorn.Server):
    """uvicorn's server looking at its clock once a second instead of ten times: an idle
    process then costs about 0.03% of a core instead of 0.2% (six services: 1.2%). A stop
    signal wakes it at once, so stopping is no slower."""

    _wake: asyncio.Future[None] | None = None

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        tenths = 0  # on_tick counts tenths of a second (the date header every 10)
        while not await self.on_tick(tenths):
            tenths = (tenths + 10) % 864_000
            self._wake = loop.create_future()
            timer = loop.call_later(1.0, _settle, self._wake)
            await self._wake
            timer.cancel()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._wake is not None:  # from a signal handler: only schedule the wake-up
            self._wake.get_loop().call_soon_threadsafe(_settle, self._wake)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _serve(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.service not in SERVICE_PORTS:
        print(f"name a service ({', '.join(SERVICE_PORTS)}) or set SERVICE", file=sys.stderr)
        return 2
    # PORT is what container platforms (Railway, Heroku-likes) hand a process.
    platform_port = os.environ.get("PORT")
    port = args.port or (int(platform_port) if platform_port else settings.port_of(args.service))
    return run_server(args.service, args.host, port, args.workers or settings.workers)


def run_server(service: str, host: str, port: int, workers: int) -> int:
    """Serve one service until a stop signal: `retail serve`, and each child of `retail up`."""
    config = uvicorn.Config(
        f"retail.{service}.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=EVENT_LOOP,
        http="httptools",
        ws="none",  # no service speaks WebSocket; "auto" would import a library for nothing
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_keep_alive=SERVER_KEEPALIVE_SECONDS,
        timeout_graceful_shutdown=5,
        # A burst is queued, never refused: connections wait in the listen backlog (capped by
        # net.core.somaxconn) and requests on the loop. A concurrency limit would answer
        # plain-text 503s outside our error format, so there is none.
        backlog=LISTEN_BACKLOG,
        limit_concurrency=None,
    )
    if workers > 1:  # uvicorn's supervisor runs its own Server in each worker
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_dir(service, port))
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    server = QuietServer(config)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


def _up(args: argparse.Namespace) -> int:
    settings = Settings()
    if settings.jwt_secret_key is None:
        ensure_development_secret(settings.data_dir)  # once, before six processes race for it
    services = args.services or available_services()
    unknown = sorted(set(services) - set(SERVICE_PORTS))
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    configure_logging("up", settings.log_level, settings.log_format)
    # The stack every service imports, once, before forking them; on a first start also
    # Alembic, which every database then needs (~0.2 s of CPU each); on PostgreSQL its
    # adapter (SQLAlchemy's asyncio extension and ORM, which SQLite never loads).
    modules = PRELOAD + MIGRATIONS if _first_start(settings, services) else PRELOAD
    preload(modules + POSTGRES if _postgres_named(settings, services) else modules)
    host = "127.0.0.1" if args.host in {"0.0.0.0", "::"} else args.host  # noqa: S104
    for name in services:
        print(f"  {name:<11} http://{host}:{settings.port_of(name)}/docs", flush=True)
    print("All services started; Ctrl-C stops them.", flush=True)

    def serve(service: str) -> int:
        return run_server(service, args.host, settings.port_of(service), settings.workers)

    return Supervisor(services, serve).run()


def _postgres_named(settings: Settings, services: Sequence[str]) -> bool:
    """Whether DATABASE_URL or a service's own `<SERVICE>_DATABASE_URL` is PostgreSQL."""
    urls = [settings.database_url, *(os.environ.get(f"{s.upper()}_DATABASE_URL") for s in services)]
    return any(_is_postgres(url) for url in urls if url)


def _is_postgres(url: str) -> bool:
    from retail.kernel.db import backend_of  # SQLAlchemy: `retail up` preloads it anyway

    try:
        return backend_of(url) == "postgresql"
    except ValueError:
        return False  # the service itself refuses it, with its own message


def _first_start(settings: Settings, services: Sequence[str]) -> bool:
    """Whether a service's SQLite file in DATA_DIR is still to be created (then migrated)."""
    if settings.database_url or settings.mongodb_uri:
        return False  # a server: the processes find out for themselves
    with_files = [s for s in services if s != "search"]  # search keeps only its index
    return any(not (settings.data_dir / f"{s}.db").exists() for s in with_files)


def _create_admin(args: argparse.Namespace) -> int:
    auth_main = importlib.import_module("retail.auth.main")
    asyncio.run(auth_main.create_admin(auth_main.AuthSettings(), args.email, args.password))
    print(f"{args.email} is an admin.")
    return 0


def _reindex(args: argparse.Namespace) -> int:
    # Not at the top: `retail up` would import FastAPI (~0.3 s) before starting any service.
    from retail.kernel.errors import AppError

    search_main = importlib.import_module("retail.search.main")
    try:
        rebuilt = asyncio.run(search_main.reindex(search_main.SearchSettings()))
    except (AppError, RuntimeError) as exc:  # a peer down, an index of another version
        print(f"reindex failed: {exc}", file=sys.stderr)
        return 1
    for one in rebuilt:
        counts = f"{one.result.products_indexed} products from {one.result.events_applied} events"
        print(f"Rebuilt {one.where}: {counts}.")
    return 0


def _seed_demo(args: argparse.Namespace) -> int:
    from retail.demo.seed import SeedError, seed_demo

    email = args.email or os.environ.get("ADMIN_EMAIL")
    password = args.password or os.environ.get("ADMIN_PASSWORD")
    if not email or not password:
        print(
            "seed-demo signs in as an admin: pass --email/--password or set ADMIN_EMAIL and "
            "ADMIN_PASSWORD",
            file=sys.stderr,
        )
        return 2
    try:
        report = asyncio.run(
            seed_demo(
                Settings(), products=args.products, email=email, password=password, seed=args.seed
            )
        )
    except SeedError as exc:
        print(f"seed-demo failed: {exc}", file=sys.stderr)
        return 1
    print(f"Seeded {report.categories} categories and {report.products} products.")
    return 0


def _parser(commands: dict[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retail", description="Retail portal backend")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start every service (Ctrl-C stops them all)")
    up.add_argument("services", nargs="*", metavar="SERVICE", help="default: all of them")
    up.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument(
        "service", nargs="?", default=os.environ.get("SERVICE"), help="default: $SERVICE"
    )
    serve.add_argument("--port", type=int, default=None, help="default: $PORT, <SERVICE>_PORT")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--workers", type=int, default=None, help="default: WORKERS (1)")
    admin = sub.add_parser("create-admin", help="create an admin or promote a user")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    sub.add_parser("reindex", help="rebuild the search index (a running search service's own)")
    demo = sub.add_parser("seed-demo", help="fill a running system with a demo catalogue")
    demo.add_argument("--products", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=42, help="same seed, same catalogue")
    demo.add_argument("--email", help="admin email (default: $ADMIN_EMAIL)")
    demo.add_argument("--password", help="admin password (default: $ADMIN_PASSWORD)")
    importing.add_parser(sub)
    for name, handler in commands.items():
        sub.choices[name].set_defaults(handler=handler)
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": _up,
    "serve": _serve,
    "create-admin": _create_admin,
    "reindex": _reindex,
    "seed-demo": _seed_demo,
    "import": importing.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser(COMMANDS).parse_args(argv)
    handler: Any = args.handler
    return int(handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
