"""`tenantry serve | worker | sync | migrate | seed | bench`."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tenantry.config import Settings, get_settings
from tenantry.kit import migrations

cli = typer.Typer(
    help="Tenantry: a multi-tenant business backend.", no_args_is_help=True, add_completion=False
)
console = Console(stderr=True)


def _database_url() -> str:
    with console.status("Starting the database…"):
        return migrations.resolve_database_url(get_settings())


async def _seed(url: str, *, only_if_empty: bool) -> int:
    from tenantry.demo import demo_tenants, has_data, seed_demo
    from tenantry.kit.db import Database, session_scope
    from tenantry.kit.platform import Platform
    from tenantry.kit.security import configure_password_hashing

    settings = get_settings()
    configure_password_hashing(settings)
    db = Database(url, settings)
    platform = Platform.build(settings, db)
    try:
        async with session_scope(db.sessionmaker) as session:
            if only_if_empty and await has_data(platform, session, settings.operator_tenant_slug):
                return 0
            specs = demo_tenants(settings.operator_tenant_slug)
            with Progress(
                TextColumn("Seeding demo data"),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress:
                task = progress.add_task("", total=len(specs))
                return await seed_demo(
                    platform,
                    session,
                    password=settings.demo_password,
                    operator_slug=settings.operator_tenant_slug,
                    advance=lambda slug: progress.update(task, advance=1, description=slug),
                )
    finally:
        await db.dispose()


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to REVISION instead")] = False,
) -> None:
    """Apply (or revert) database migrations."""
    url = _database_url()
    if down:
        migrations.downgrade(url, revision if revision != "head" else "base")
    else:
        migrations.upgrade(url, revision)
    console.print(f"[green]Database at {'base' if down and revision == 'head' else revision}.")


@cli.command()
def seed(
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Seed the demo companies")] = True,
    customers: Annotated[
        int, typer.Option(min=0, help="Also add this many CRM customers, with their activity")
    ] = 0,
    tenant: Annotated[str, typer.Option(help="The company the customers go to")] = "acme",
) -> None:
    """Seed the demo data (idempotent); `--customers N` adds N customers each time."""
    url = _database_url()
    migrations.upgrade(url)
    if demo:
        created = asyncio.run(_seed(url, only_if_empty=False))
        console.print(f"[green]Demo data ready ({created} rows created).")
    if customers:
        from tenantry.crm.demo_data import seed_at_scale

        try:
            written = asyncio.run(seed_at_scale(url, tenant, customers, console))
        except LookupError as exc:
            console.print(f"[red]{exc}")
            raise typer.Exit(1) from None
        console.print("[green]" + ", ".join(f"{n:,} {table}" for table, n in written.items()))


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
    demo_customers: Annotated[
        int, typer.Option(min=0, help="Embedded first run: acme's demo CRM customers")
    ] = 2_000,
) -> None:
    """Serve the API. Embedded mode migrates and seeds the demo data on first run."""
    import uvicorn

    from tenantry.demo import demo_logins
    from tenantry.kit.server import ProblemHttpToolsProtocol

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    url = _database_url()
    if settings.embedded:
        # Worker processes share the server this process started (and stops on exit), and
        # this process starts it again if it dies.
        os.environ["TENANTRY_EMBEDDED_DATABASE_URL"] = url
        from tenantry.kit import embedded

        embedded.supervise(settings.embedded_pgdata, threading.Event())
    if migrate_first:
        with console.status("Migrating…"):
            migrations.upgrade(url)
    seeded = asyncio.run(_seed(url, only_if_empty=True)) if settings.embedded else 0
    if seeded and demo_customers:  # a first run: acme's customers, leads, calls, messages
        from tenantry.crm.demo_data import seed_at_scale

        asyncio.run(seed_at_scale(url, "acme", demo_customers, console))
    base = f"http://{host}:{port}"
    console.print(f"[bold]Tenantry[/] API  {base}/api/v1")
    console.print(f"         docs {base}/docs")
    console.print(f"      console {base}/console")
    if settings.embedded:
        console.print(f"         data {settings.embedded_pgdata} (embedded PostgreSQL)")
        note = " (just created)" if seeded else ""
        console.print(f"Demo logins{note}, password from DEMO_PASSWORD:")
        for email in demo_logins(settings.operator_tenant_slug):
            console.print(f"  {email}")
    metrics_dir = _multiprocess_metrics(workers)
    from tenantry.kit.logging import configure_logging

    configure_logging(settings)  # the supervisor's own lines; each worker sets up its own
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so the
    # `finally` below stops the embedded server instead of the process dying around it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            "tenantry.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            # httptools, with problem documents for what its parser refuses, and the request
            # head bounded as it arrives (`kit.server`).
            http=ProblemHttpToolsProtocol,
            # Logging is ours (kit/logging.py, set up by create_app in every worker), and so is
            # the access log (the edge middleware, `kit.middleware`).
            log_config=None,
            access_log=False,
            # `Server: uvicorn` names the software to an attacker and serves no client.
            server_header=False,
            # X-Forwarded-* only from TRUSTED_PROXIES (uvicorn would trust 127.0.0.1).
            **settings.proxy_options(),
            log_level=settings.log_level.lower(),
            # After the drain (`kit.shutdown`): how long requests in flight may finish.
            timeout_graceful_shutdown=settings.shutdown_grace_s,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if settings.embedded:
            from tenantry.kit import embedded

            embedded.stop_all()


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Jobs run at once (default JOBS_CONCURRENCY)")
    ] = None,
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues to take jobs from (default: all)")
    ] = None,
) -> None:
    """Run background jobs (scale-out): the app's services without its HTTP server.

    SIGTERM or Ctrl-C stops taking jobs, gives running ones JOBS_SHUTDOWN_GRACE_S to finish,
    then cancels them (they are retried). Any number of workers may run against one database.
    """
    settings = get_settings()
    if settings.embedded:
        url = _database_url()  # a worker beside `tenantry serve` shares its embedded server
        os.environ["TENANTRY_EMBEDDED_DATABASE_URL"] = url
        settings = get_settings().model_copy(update={"embedded_database_url": url})
    # This process is the worker: the app's lifespan must not start a second one inside it.
    settings = settings.model_copy(update={"jobs_in_process": False})
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    console.print(
        f"[bold]Tenantry[/] worker on {', '.join(names) if names else 'every queue'}, "
        f"{concurrency or settings.jobs_concurrency} at once"
    )
    from tenantry.worker import work

    asyncio.run(work(settings, concurrency, names))


@cli.command()
def sync(
    source_id: Annotated[str, typer.Argument(help="The sync source's id")],
) -> None:
    """Sync one source now, in the foreground, with a progress bar (its run is recorded like
    any other; a source already syncing is followed instead)."""
    import uuid

    try:
        parsed = uuid.UUID(source_id)
    except ValueError:
        console.print(f"[red]{source_id!r} is not a source id (a UUID).")
        raise typer.Exit(2) from None
    settings = get_settings()
    if settings.embedded:
        url = _database_url()
        settings = settings.model_copy(update={"embedded_database_url": url})
    settings = settings.model_copy(update={"jobs_in_process": False})
    status = asyncio.run(_sync(settings, parsed))
    if status != "succeeded":
        raise typer.Exit(1)


async def _sync(settings: Settings, source_id: Any) -> str:
    from tenantry.app import create_app
    from tenantry.kit.jobs import unit_of_work
    from tenantry.kit.repository import TenantScope
    from tenantry.sync.runner import SyncRunner
    from tenantry.sync.service import SyncService, run_out

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        platform = app.state.platform
        service = platform.service(SyncService)
        async with unit_of_work(platform) as session:
            tenant_id = await service.tenant_of(session, source_id)
            if tenant_id is None:
                console.print(f"[red]No sync source {source_id}.")
                return "missing"
            scope = TenantScope(tenant_id)
            run, created = await service.start_run(
                session, scope, source_id, trigger="manual", queue_job=False
            )
        console.print(f"Sync run {run.id} ({'new' if created else 'already under way'})")

        async def progress() -> None:
            with Progress(
                TextColumn("Syncing"),
                BarColumn(),  # no total is known: the bar pulses
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("", total=None)
                while True:
                    async with unit_of_work(platform) as session:
                        out = run_out(await service.run_in(session, scope, run.id))
                    bar.update(
                        task,
                        description=f"page {out.pages_done}, {out.records_written} written,"
                        f" {out.records_failed} failed",
                    )
                    if out.status in ("succeeded", "failed"):
                        return
                    await asyncio.sleep(0.3)

        shown = asyncio.create_task(progress())
        if created:
            try:
                await SyncRunner(platform, scope, run.id).run(last_try=True)
            except Exception as exc:
                console.print(f"[red]The sync failed: {exc}")
        await shown
        async with unit_of_work(platform) as session:
            out = run_out(await service.run_in(session, scope, run.id))
        for error in out.record_errors:
            console.print(f"  page {error.page}, {error.external_id}: {error.error}")
        colour = "green" if out.status == "succeeded" else "red"
        console.print(
            f"[{colour}]{out.status}[/]: {out.records_written} customers and"
            f" {out.leads_written} leads written, {out.records_failed} records failed,"
            f" {out.pages_done} pages in {out.duration_s or 0:.1f} s"
        )
        return out.status


@cli.command()
def bench(
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", "-s", help="Run only these (repeatable)")
    ] = None,
    duration: Annotated[float, typer.Option(help="Seconds per scenario run")] = 10,
    warmup: Annotated[float, typer.Option(help="Warm-up seconds per scenario")] = 2,
    repeat: Annotated[int, typer.Option(min=1, help="Interleaved rounds")] = 3,
    locust: Annotated[
        bool, typer.Option("--locust/--no-locust", help="Run the user scenario")
    ] = True,
    locust_duration: Annotated[float, typer.Option(help="Seconds per locust run")] = 20,
    locust_users: Annotated[int, typer.Option(help="Concurrent locust users")] = 100,
    sync: Annotated[
        bool, typer.Option("--sync/--no-sync", help="Run the sync-throughput scenario")
    ] = True,
    sync_duration: Annotated[float, typer.Option(help="Seconds of sync throughput")] = 60,
    crm_customers: Annotated[int, typer.Option(help="CRM customers seeded in acme")] = 100_000,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Benchmark against this PostgreSQL (default: DATABASE_URL, else embedded)"
        ),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis for the server (default: REDIS_URL)")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Profile the server under this scenario with py-spy")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Results directory (default bench/results)")
    ] = None,
) -> None:
    """Benchmark: start a server, seed, warm up, run the scenarios, report (bench/README.md)."""
    from bench.runner import Options, run

    options = Options(
        scenarios=scenario,
        duration_s=duration,
        warmup_s=warmup,
        repeat=repeat,
        locust=locust,
        locust_duration_s=locust_duration,
        locust_users=locust_users,
        sync=sync,
        sync_duration_s=sync_duration,
        crm_customers=crm_customers,
        database_url=database_url,
        redis_url=redis_url,
        profile=profile,
    )
    if out is not None:
        options.out_dir = out
    data = run(options)
    failed = [s["name"] for s in data["scenarios"] if s["failed"]]
    failed += [u["name"] for u in data.get("locust") or [] if u["failed"]]
    if failed:
        console.print(f"[red]Runs with errors or non-2xx answers: {', '.join(failed)}")
        raise typer.Exit(1)


# tenantry.kit.metrics.MULTIPROC_ENV; not imported from there, because importing that module
# creates the metric files, which must not happen before the directory is ready.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _multiprocess_metrics(workers: int) -> str | None:
    """With several workers, prometheus-client keeps each worker's values in files under
    PROMETHEUS_MULTIPROC_DIR, and /metrics adds them up. The directory must exist and be empty
    before the workers start (stale files would count a past run); ours is made here and
    removed on exit. A directory set by the operator is used as it is, emptied first."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        os.makedirs(configured, exist_ok=True)
        for name in os.listdir(configured):
            if name.endswith(".db"):
                os.unlink(os.path.join(configured, name))
        return None
    if workers == 1:
        return None
    made = tempfile.mkdtemp(prefix="tenantry-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
