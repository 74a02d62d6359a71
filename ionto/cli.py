"""The ``ionto`` command line: emulate, import, compare, report, demo and db.

Examples
--------
>>> from typer.testing import CliRunner
>>> result = CliRunner().invoke(app, ["--db", "sqlite://", "db", "info"])
>>> result.exit_code
0
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from data_schemas import store
from ionto.progress import progress_bar

app = typer.Typer(
    help="ionto-analytics: does iontophoresis help your patients, at which dose?",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Create, migrate and inspect the store.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@dataclass(frozen=True)
class Settings:
    """What the global options chose, handed to every subcommand through the context."""

    db_url: str
    db_is_default: bool
    console: Console

    @contextmanager
    def open_store(self) -> Iterator[Engine]:
        """Open the store, announcing the default SQLite file the first time it is made."""
        if self.db_is_default:
            database = make_url(self.db_url).database or store.DEFAULT_SQLITE_FILE
            path = Path(database).resolve()
            if not path.exists():
                self.console.print(
                    f"[yellow]Using the default store {path} (SQLite). Choose another with "
                    f"--db URL or {store.ENV_VAR}.[/yellow]"
                )
        engine = store.connect(self.db_url)
        try:
            yield engine
        finally:
            engine.dispose()


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help=f"Store URL (sqlite:///file.db or postgresql://user@host/db); "
            f"default ${store.ENV_VAR} or ./{store.DEFAULT_SQLITE_FILE}.",
        ),
    ] = None,
) -> None:
    """Choose the store every subcommand works on."""
    url, is_default = store.resolve_url(db)
    ctx.obj = Settings(db_url=url, db_is_default=is_default, console=Console(stderr=True))


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the store, or migrate it to the newest schema revision."""
    with _settings(ctx).open_store() as engine:
        store.upgrade(engine)
        revision = store.current_revision(engine)
        typer.echo(f"store at revision {revision} ({engine.dialect.name})")


@db_app.command("info")
def db_info(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Print the backend, the schema revision and the row count of every table."""
    with _settings(ctx).open_store() as engine:
        details = store.info(engine)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "url": details.url,
                    "backend": details.backend,
                    "revision": details.revision,
                    "rows": details.row_counts,
                }
            )
        )
        return
    table = Table()
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in details.row_counts.items():
        table.add_row(name, f"{count:,}")
    console = Console()
    console.print(f"store: {details.url} ({details.backend})")
    console.print(f"schema revision: {details.revision or 'none (run: ionto db upgrade)'}")
    console.print(table)


@app.command()
def emulate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder to write the clinic network's exports to.")],
    scenario: Annotated[str, typer.Option(help="Shipped scenario name or a path.")] = "default",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    clinics: Annotated[int | None, typer.Option(help="Number of clinics.")] = None,
    patients: Annotated[int | None, typer.Option(help="Number of patients.")] = None,
    start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
) -> None:
    """Emulate a clinic network: device logs, EHR and FHIR records, and the ground truth."""
    from emulator import emulate as run_emulator

    with progress_bar("emulating patients", unit="patients") as advance:
        summary = run_emulator(
            out,
            scenario=scenario,
            seed=seed,
            clinics=clinics,
            patients=patients,
            start=start.date() if start else None,
            end=end.date() if end else None,
            progress=advance,
        )
    console = Console()
    console.print(summary.summary().to_string(index=False))
    console.print(f"ground truth: {summary.ground_truth}")


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files, folders and zip archives.")],
    workers: Annotated[int, typer.Option(help="Parser processes.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    quarantine: Annotated[
        Path | None, typer.Option(help="Folder where refused files are set aside.")
    ] = Path("quarantine"),
) -> None:
    """Import device logs and treatment records into the store.

    Exit status: 0 when every file was imported or unchanged; 4 when some files were
    quarantined (the rest imported); 2 when the import could not run at all.
    """
    from sqlalchemy.exc import OperationalError

    from device_import.pipeline import EXIT_COULD_NOT_RUN, Importer
    from device_import.privacy import Keyer, load_site_key

    settings = _settings(ctx)
    try:
        with settings.open_store() as engine:
            store.upgrade(engine)
            importer = Importer(
                engine, Keyer(load_site_key()), workers=workers, quarantine_dir=quarantine
            )
            with progress_bar("importing", unit="files", enabled=not as_json) as advance:
                report = importer.run(paths, progress=advance)
    except OperationalError as error:
        settings.console.print(f"[red]the store could not be reached: {error.orig}[/red]")
        raise typer.Exit(EXIT_COULD_NOT_RUN) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        console = Console()
        console.print(report.summary().to_string(index=False))
        for problem in report.quarantine:
            console.print(f"[red]quarantined[/red] {problem.message()}")
        if report.unlinked_sessions:
            console.print(f"{report.unlinked_sessions} sessions could not be linked to a visit")
    raise typer.Exit(report.exit_status)


@app.command()
def compare(
    ctx: typer.Context,
    condition: Annotated[str, typer.Option(help="Condition or family key, e.g. epicondylitis.")],
    instrument: Annotated[str, typer.Option(help="Instrument key, e.g. prtee or nprs.")],
    arms: Annotated[
        tuple[str, str],
        typer.Option(help="Two arm keys: the estimate is the first minus the second."),
    ],
    at_weeks: Annotated[int, typer.Option("--at-weeks", help="Follow-up week.")] = 6,
    method: Annotated[str, typer.Option(help="ancova, mixed or iptw.")] = "ancova",
    per_protocol: Annotated[
        bool, typer.Option("--per-protocol", help="Apply the device-log per-protocol rules.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Compare two arms on an outcome: difference in mean change, adjusted, with a 95% CI.

    Exit status: 0 on success; 2 when the options or the data do not allow a comparison.
    """
    from ionto_analytics.compare.command import run_compare
    from ionto_analytics.compare.spec import ComparisonSpec
    from ionto_analytics.errors import IontoError

    settings = _settings(ctx)
    try:
        spec = ComparisonSpec(
            condition, instrument, arms, week=at_weeks, method=method, per_protocol=per_protocol
        )
        with settings.open_store() as engine:
            report = run_compare(engine, spec)
    except IontoError as error:
        settings.console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    typer.echo(report.to_json() if as_json else report.to_text())


@app.command()
def report(
    ctx: typer.Context,
    quarter: Annotated[str, typer.Option(help="Calendar quarter, e.g. 2025Q3.")],
    clinic: Annotated[
        str | None, typer.Option(help="One clinic's report (clinic key); default all.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the report files.")] = Path("reports"),
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also print a PDF with headless Chromium.")
    ] = False,
) -> None:
    """Write the quarterly outcomes report: one self-contained HTML file (and a PDF).

    Exit status: 0 on success; 2 when the options, the store or Chromium do not allow it.
    """
    from ionto_analytics.errors import IontoError
    from ionto_analytics.report import write_report

    settings = _settings(ctx)
    try:
        with (
            settings.open_store() as engine,
            progress_bar(f"report {quarter}", unit="steps") as advance,
        ):
            files = write_report(
                engine,
                quarter,
                clinic,
                out_dir=out,
                pdf=pdf,
                progress=advance,
                store_description=make_url(settings.db_url).render_as_string(hide_password=True),
            )
    except IontoError as error:
        settings.console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    typer.echo(f"html: {files.html.resolve()}")
    if files.pdf is not None:
        typer.echo(f"pdf: {files.pdf.resolve()}")


@app.command()
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder for the demo's exports.")] = Path("demo"),
    patients: Annotated[int | None, typer.Option(help="Number of patients.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the emulator.")] = 0,
) -> None:
    """Run the main job end to end on the demo store and say where the results are."""
    from ionto.demo import run_demo

    settings = _settings(ctx)
    with settings.open_store() as engine:
        result = run_demo(engine, out, patients=patients, seed=seed, console=settings.console)
    typer.echo(f"imported: {json.dumps(result.import_summary['files'])}")
    typer.echo(f"exports: {result.exports_dir.resolve()}")
    typer.echo(f"ground truth: {result.ground_truth.resolve()}")
    typer.echo(f"store: {result.store_url}")
    typer.echo(f"quarterly report: {result.report.resolve()}")


if __name__ == "__main__":
    app()
