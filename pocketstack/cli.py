"""The `pocketstack` command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from pocketstack.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="pocketstack: an OpenStack-compatible cloud that boots real servers.")
identity_app = typer.Typer(no_args_is_help=True, help="Identity service administration.")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
image_app = typer.Typer(no_args_is_help=True, help="Images for the cloud.")
app.add_typer(identity_app, name="identity")
app.add_typer(db_app, name="db")
app.add_typer(image_app, name="image")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="state directory "
                                              "(default ~/.local/share/pocketstack)")]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="settings file (default: $POCKETSTACK_CONFIG or "
                                                 "./pocketstack.toml); `up --distributed` writes DATA_DIR/"
                                                 "pocketstack.toml")]


def make_settings(config: Path | None = None, **overrides: Any) -> Settings:
    if config is not None:
        os.environ["POCKETSTACK_CONFIG"] = str(config)  # also read by the processes this one starts
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def up(
    data_dir: DataDir = None,
    bind: Annotated[str | None, typer.Option(help="address every service listens on (default 127.0.0.1)")] = None,
    port_offset: Annotated[int | None, typer.Option(help="added to every default port")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning")] = None,
    compute_driver: Annotated[str | None, typer.Option(help="hypervisor driver of the compute agents: fake or "
                                                       "qemu")] = None,
    fake_hosts: Annotated[int | None, typer.Option(help="compute hosts to run with the fake driver")] = None,
    distributed: Annotated[bool, typer.Option("--distributed", help="every service its own process, on the local "
                                              "RabbitMQ and PostgreSQL ([distributed] settings)")] = False,
    namespace_hosts: Annotated[int | None, typer.Option(help="with --distributed: compute hosts, each in a network "
                                                        "namespace of its own with its own address")] = None,
    config: ConfigFile = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="run in the background (output in "
                                         "DATA_DIR/log/up.log); `pocketstack down` stops it")] = False,
) -> None:
    """Start the cloud in the foreground (all-in-one, or --distributed); Ctrl-C stops it. With -d in the
    background, returning once it is ready."""
    compute = {k: v for k, v in (("driver", compute_driver), ("fake_hosts", fake_hosts)) if v is not None}
    if detach:
        _up_detached(data_dir, config)
        return
    if namespace_hosts is not None and not distributed:
        raise typer.BadParameter("--namespace-hosts needs --distributed")
    settings = make_settings(config, data_dir=data_dir, bind=bind, port_offset=port_offset, log_level=log_level,
                             compute=compute or None,
                             distributed={"namespace_hosts": namespace_hosts} if namespace_hosts else None)
    if distributed:
        from pocketstack.distributed.deploy import run_distributed

        raise typer.Exit(run_distributed(settings))
    from pocketstack.launcher import run_foreground

    run_foreground(settings)


def _up_detached(data_dir: Path | None, config: Path | None) -> None:
    """`up -d`: this command line without -d, in the background."""
    import sys

    from pocketstack.background import BackgroundError, start

    settings = make_settings(config, data_dir=data_dir)
    args = [a for a in sys.argv[sys.argv.index("up") + 1:] if a not in ("-d", "--detach")]
    try:
        lines = start(settings.data_dir, args)
    except BackgroundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    for line in lines:
        typer.echo(line)
    typer.echo(f"running in the background; output: {settings.data_dir / 'log' / 'up.log'}; "
               "`pocketstack down` stops it")


@app.command()
def down(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Stop the cloud `pocketstack up -d` started (what stays on the host is as after Ctrl-C)."""
    from pocketstack.background import BackgroundError, stop

    settings = make_settings(config, data_dir=data_dir)
    try:
        lines = stop(settings.data_dir)
    except BackgroundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    for line in lines:
        typer.echo(line)


@app.command()
def serve(
    role: Annotated[str, typer.Argument(help="identity, image, network, network-agent, volume-api, volume, "
                                        "compute-api, metadata, conductor, scheduler, compute")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
    bind: Annotated[str | None, typer.Option(help="address the API listens on")] = None,
    port: Annotated[int | None, typer.Option(help="listening port (default: the role's configured port plus "
                                             "port_offset; set it when a load balancer holds that one)")] = None,
    workers: Annotated[int | None, typer.Option(help="API worker processes (default: the role's `workers`)")] = None,
    host: Annotated[str | None, typer.Option(help="host name of this conductor, scheduler, compute agent, network "
                                             "agent or volume manager")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning")] = None,
    worker_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run one role of the cloud in this process (distributed mode) until SIGTERM or Ctrl-C."""
    from pocketstack.distributed.serve import serve as run_role
    from pocketstack.services import role as find_role

    try:
        selected = find_role(role)
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2)
    # command-line values go to the environment so the worker processes started below see them too
    for key, value in ((f"{(selected.api or 'compute').upper()}__WORKERS", workers),
                       (f"{(selected.host_section or 'compute').upper()}__HOST", host),
                       ("BIND", bind), ("LOG_LEVEL", log_level), ("DATA_DIR", data_dir)):
        if value is not None:
            os.environ[f"POCKETSTACK_{key}"] = str(value)
    run_role(selected, make_settings(config), port=port, worker_fd=worker_fd)


@app.command()
def purge(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Remove what a stopped cloud leaves on the host. For `up --distributed`: its databases and RabbitMQ vhost,
    the network node's namespaces and bridges, the namespaced hosts and their guests, the management bridge. For
    the all-in-one: its QEMU guests and the network data plane (its databases in the data dir stay)."""
    from pocketstack.distributed.deploy import DEPLOYMENT_FILE, DeployError
    from pocketstack.distributed.deploy import purge as purge_deployment
    from pocketstack.launcher import purge as purge_all_in_one

    settings = make_settings(config, data_dir=data_dir)
    try:
        if (settings.data_dir / DEPLOYMENT_FILE).exists():
            lines = purge_deployment(settings.data_dir)
        else:
            lines = purge_all_in_one(settings)
    except (RuntimeError, DeployError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    for line in lines:
        typer.echo(line)


@app.command()
def trace(
    server: Annotated[str, typer.Argument(help="server ID or name")],
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
    config: ConfigFile = None,
) -> None:
    """Show the boot of a server hop by hop (FLOW.md steps), with timings."""
    import asyncio
    import json

    from pocketstack.trace.render import TraceError, collect, render

    settings = make_settings(config, data_dir=data_dir)
    try:
        result = asyncio.run(collect(settings, server))
    except TraceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        render(result)


@app.command()
def status(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
    config: ConfigFile = None,
) -> None:
    """Show what runs and whether it answers: services, processes, compute hosts, network agents."""
    import asyncio
    import json

    from pocketstack.status import collect, render

    result = asyncio.run(collect(make_settings(config, data_dir=data_dir)))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        render(result)
    if any(s["state"] != "up" for s in result["services"]):
        raise typer.Exit(1)


@app.command()
def coverage(
    write: Annotated[bool, typer.Option("--write", help="also write docs/coverage.md")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """Show how much of each service's OpenStack API reference the route tables implement."""
    import json

    from pocketstack.coverage.render import DOC, render_markdown, render_table
    from pocketstack.coverage.report import as_json as coverage_json
    from pocketstack.coverage.report import coverage as collect

    results = collect()
    if as_json:
        typer.echo(json.dumps(coverage_json(results), indent=2))
    else:
        render_table(results)
    if write:
        DOC.write_text(render_markdown(results))
        typer.echo(f"wrote {DOC}", err=as_json)
    if any(r.unknown for r in results):
        raise typer.Exit(1)


@identity_app.command("rotate-keys")
def rotate_keys(data_dir: DataDir = None) -> None:
    """Rotate the Fernet token keys: the staged key becomes primary; tokens of kept keys stay valid."""
    from pocketstack.identity.tokens import KeyRepository

    settings = make_settings(data_dir=data_dir)
    repo = KeyRepository(settings.identity.key_repository or settings.data_dir / "fernet-keys",
                         settings.identity.max_active_keys)
    primary = repo.rotate()
    typer.echo(f"rotated: key {primary} is now primary")


@image_app.command("build-guest")
def build_guest(
    output: Annotated[Path | None, typer.Option("--output", help="cache directory of the build "
                                                "(default DATA_DIR/guest)")] = None,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="rebuild even when the cached build is current")] = False,
) -> None:
    """Build the test guest (raw and qcow2 whole-disk images) from Debian packages; cached per package versions."""
    from pocketstack.guest.build import GuestBuildError, build_guest_image
    from pocketstack.guest.register import guest_cache_dir

    cache = output or guest_cache_dir(make_settings(data_dir=data_dir))
    try:
        image = build_guest_image(cache, force=force, prune=output is None, log=typer.echo)
    except GuestBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    typer.echo(f"raw:   {image.raw}\nqcow2: {image.qcow2}\nversion {image.version}, kernel {image.kernel}")


@db_app.command("sync")
def db_sync(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Run every service's migrations up to the newest revision (each service's database_url)."""
    import asyncio

    settings = make_settings(config, data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(sync_databases(settings, typer.echo))


async def sync_databases(settings: Settings, report: Any = None) -> None:
    """Every service's migrations, then the trace store's."""
    from pocketstack.common.db import Database
    from pocketstack.services import SERVICES
    from pocketstack.trace.store import TraceStore

    for spec in SERVICES:
        if not spec.database:
            continue
        db = Database(settings.database_url(spec.name))
        try:
            await db.migrate(spec.migrations_dir, spec.version_table)
        finally:
            await db.close()
        if report:
            report(f"{spec.name}: up to date")
    store = TraceStore(settings)
    try:
        await store.migrate()
    finally:
        await store.close()
    if report:
        report("trace: up to date")


@db_app.command("revision")
def db_revision(
    service: Annotated[str, typer.Argument(help="service name, e.g. identity")],
    message: Annotated[str, typer.Option("-m", "--message")],
) -> None:
    """Autogenerate a migration for a service from its models (for developers)."""
    import tempfile

    from alembic import command

    from pocketstack.common.db import alembic_config
    from pocketstack.services import SERVICES

    spec = next(s for s in SERVICES if s.name == service)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(spec.migrations_dir, spec.version_table)
        cfg.set_main_option("sqlalchemy.url", f"sqlite:///{tmp}/autogen.db")
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)


if __name__ == "__main__":
    app()
