"""The ``ionto`` command line: emulate, import, compare, report, demo, study and db.

Every command finds its store the same way (:meth:`Settings.open_store`): ``--db URL``
before the subcommand, else ``IONTO_DATABASE_URL``, else the demo store ``./ionto.db``.
Commands that only read (``db info``, ``compare``, ``report``) never create a store.

Exit status, the same for every command:

====  =====================================================================================
code  meaning
====  =====================================================================================
0     done
2     could not run: bad option or input, a store that is missing, refused or unreachable,
      a path that cannot be used (one line on stderr says what, where and the fix)
4     ``ionto import`` only: some files were quarantined, the rest imported
====  =====================================================================================

:func:`main` is the ``ionto`` entry point; errors a user can cause never show a traceback.
It runs the numerical work on one BLAS thread (:data:`BLAS_THREADS`) unless the
environment already says how many.

Examples
--------
>>> main(["--db", "sqlite://", "db", "info", "--json"])  # doctest: +ELLIPSIS
{"url": "sqlite://", "backend": "sqlite", "revision": null, "rows": {}}
0
>>> main(["--db", "mysql://clinic@db/ionto", "db", "info"])
2
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

try:  # typer 0.29 and later carry their own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # earlier typer runs on click itself
    from click import exceptions as click_errors

from data_schemas.errors import EXIT_COULD_NOT_RUN, EXIT_OK
from data_schemas.store_names import DEFAULT_SQLITE_FILE, ENV_VAR, SUPPORTED_URLS
from device_import.sources import MiB, ZipLimits
from ionto.messages import one_line, say, user_errors

if TYPE_CHECKING:
    from sqlalchemy import Engine

# What is imported at the top is what ``ionto --help`` needs; each command imports its
# stage (the store, pandas, the analysis) when it runs, so the help and ``db info`` start
# in well under a second.


class _IontoGroup(TyperGroup):
    """The top-level group: a user-caused error in any command becomes one line and exit 2."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except user_errors() as error:
            if isinstance(error, OSError) and error.errno == errno.EPIPE:
                raise  # typer quietly handles a closed pipe on stdout
            say(one_line(error))
            raise typer.Exit(EXIT_COULD_NOT_RUN) from None


app = typer.Typer(
    cls=_IontoGroup,
    help="ionto-analytics: does iontophoresis help your patients, at which dose?",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="Create, migrate and inspect the store.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")
study_app = typer.Typer(
    help="Network studies: run a study spec at a site, pool the sites' packages.",
    no_args_is_help=True,
)
app.add_typer(study_app, name="study")


class Access(Enum):
    """How a command uses its store, which decides what :meth:`Settings.open_store` checks."""

    READ = "read"
    """It must exist, answer and be at this code's schema revision (compare, report)."""
    INSPECT = "inspect"
    """It must exist and answer, at any revision (db info)."""
    WRITE = "write"
    """A missing SQLite file is created (db upgrade, import, demo)."""


@dataclass(frozen=True)
class Settings:
    """What the global options chose, handed to every subcommand through the context."""

    db_url: str
    db_is_default: bool
    console: Console

    @contextmanager
    def open_store(self, access: Access = Access.READ) -> Iterator[Engine]:
        """Open the store (the one path every command takes), checked for ``access``.

        A store being written that does not exist yet is announced if it is the default.
        """
        from sqlalchemy.engine import make_url

        from data_schemas import store

        if access is Access.WRITE and self.db_is_default:
            database = make_url(self.db_url).database or store.DEFAULT_SQLITE_FILE
            path = Path(database).resolve()
            if not path.exists():
                self.console.print(
                    Text(
                        f"Using the default store {path} (SQLite). Choose another with "
                        f"--db URL or {store.ENV_VAR}.",
                        style="yellow",
                    )
                )
        engine = store.connect(self.db_url, create=access is Access.WRITE)
        try:
            store.check_reachable(engine)
            if access is Access.READ:
                store.require_revision(engine)
            yield engine
        finally:
            engine.dispose()


def _folder(value: Path | None) -> Path | None:
    """Refuse a folder option that names an existing file (the folder is made if missing)."""
    if value is not None and value.exists() and not value.is_dir():
        raise typer.BadParameter(f"{value} is a file; expected a folder (created if missing)")
    return value


@app.callback()
def choose_store(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help=f"Store URL ({SUPPORTED_URLS}); goes before the subcommand; "
            f"default ${ENV_VAR} or ./{DEFAULT_SQLITE_FILE}.",
        ),
    ] = None,
) -> None:
    """Choose the store every subcommand works on."""
    from data_schemas import store

    url, is_default = store.resolve_url(db)
    console = Console(stderr=True, soft_wrap=True)  # a message is one line, however long
    ctx.obj = Settings(db_url=url, db_is_default=is_default, console=console)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the store, or migrate it to the newest schema revision."""
    from data_schemas import store

    with _settings(ctx).open_store(Access.WRITE) as engine:
        store.upgrade(engine)
        revision = store.current_revision(engine)
        typer.echo(f"store at revision {revision} ({engine.dialect.name})")


@db_app.command("info")
def db_info(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Print the backend, the schema revision and the row count of every table."""
    from rich.table import Table

    from data_schemas import store

    with _settings(ctx).open_store(Access.INSPECT) as engine:
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
    console.print(Text(f"store: {details.url} ({details.backend})"))
    console.print(Text(f"schema revision: {details.revision or 'none (run: ionto db upgrade)'}"))
    console.print(table)


@app.command()
def emulate(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(help="Folder to write the clinic network's exports to.", callback=_folder),
    ],
    scenario: Annotated[str, typer.Option(help="Shipped scenario name or a path.")] = "default",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    clinics: Annotated[int | None, typer.Option(help="Number of clinics.")] = None,
    patients: Annotated[int | None, typer.Option(help="Number of patients.")] = None,
    start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
) -> None:
    """Emulate a clinic network: device logs, EHR and FHIR records, and the ground truth."""
    from emulator import emulate as run_emulator
    from ionto.progress import progress_bar

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
    console.print(Text(summary.summary().to_string(index=False)))
    console.print(Text(f"ground truth: {summary.ground_truth}"))


_ZIP = ZipLimits()
"""The default zip limits, shown in ``ionto import --help``."""


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files, folders and zip archives.")],
    workers: Annotated[int, typer.Option(help="Parser processes.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    quarantine: Annotated[
        Path | None,
        typer.Option(help="Folder where refused files are set aside.", callback=_folder),
    ] = Path("quarantine"),
    zip_max_ratio: Annotated[
        int,
        typer.Option(
            min=2,
            metavar="N",
            help=f"A zip member over {_ZIP.ratio_from_bytes // MiB} MiB may unpack to at most "
            "N times its compressed size.",
        ),
    ] = _ZIP.ratio,
    zip_max_size: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="MIB",
            help="A zip archive may unpack to at most MIB mebibytes in all "
            f"(one member at most {_ZIP.member_bytes // MiB} MiB, or MIB if smaller).",
        ),
    ] = _ZIP.archive_bytes // MiB,
    zip_max_members: Annotated[
        int, typer.Option(min=1, metavar="N", help="A zip archive may hold at most N files.")
    ] = _ZIP.members,
) -> None:
    """Import device logs and treatment records into the store.

    A zip archive that breaks a --zip-max-* limit is refused before it is unpacked.
    Exit status: 0 when every file was imported or unchanged; 4 when some files were
    quarantined (the rest imported); 2 when the import could not run at all.
    """
    from data_schemas import store
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer, load_site_key
    from ionto.progress import progress_bar

    with _settings(ctx).open_store(Access.WRITE) as engine:
        store.upgrade(engine)
        limits = ZipLimits(
            archive_bytes=zip_max_size * MiB, ratio=zip_max_ratio, members=zip_max_members
        )
        importer = Importer(
            engine,
            Keyer(load_site_key()),
            workers=workers,
            quarantine_dir=quarantine,
            zip_limits=limits,
        )
        with progress_bar("importing", unit="files", enabled=not as_json) as advance:
            report = importer.run(paths, progress=advance)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        console = Console(soft_wrap=True)  # a problem is one line, however long
        console.print(Text(report.summary().to_string(index=False)))
        for problem in report.quarantine:
            console.print(Text.assemble(("quarantined", "red"), " ", problem.message()))
        if report.unlinked_sessions:
            console.print(f"{report.unlinked_sessions} sessions could not be linked to a visit")
    raise typer.Exit(report.exit_status)


@app.command()
def compare(
    ctx: typer.Context,
    condition: Annotated[
        str,
        typer.Option(metavar="KEY", help="Condition or family key, e.g. epicondylitis."),
    ],
    instrument: Annotated[
        str, typer.Option(metavar="KEY", help="Instrument key, e.g. prtee or nprs.")
    ],
    arms: Annotated[
        tuple[str, str],
        typer.Option(
            metavar="FIRST SECOND", help="Two arm keys: the estimate is the first minus the second."
        ),
    ],
    at_weeks: Annotated[
        int, typer.Option("--at-weeks", metavar="WEEK", help="Follow-up week.")
    ] = 6,
    method: Annotated[
        str, typer.Option(metavar="METHOD", help="ancova, mixed, iptw, mmrm or ipcw.")
    ] = "ancova",
    per_protocol: Annotated[
        bool, typer.Option("--per-protocol", help="Apply the device-log per-protocol rules.")
    ] = False,
    covariance: Annotated[
        str | None,
        typer.Option(
            metavar="STRUCTURE",
            help="mmrm only: unstructured, cs, ar1, heterogeneous_cs, heterogeneous_ar1, "
            "diagonal, or aic (default: the smallest REML AIC of unstructured and the "
            "heterogeneous AR(1), heterogeneous CS and CS fallbacks).",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='One JSON object on stdout; an error as {"error": ..., "exit_status": 2}.',
        ),
    ] = False,
) -> None:
    """Compare two arms on an outcome: difference in mean change, adjusted, with a 95% CI.

    Keys are matched without regard to case. Exit status: 0 on success; 2 when the options,
    the store or the data do not allow a comparison.
    """
    from ionto_analytics.compare.command import comparison_keys, run_compare
    from ionto_analytics.compare.spec import ComparisonSpec

    settings = _settings(ctx)
    try:
        condition, instrument, keys = comparison_keys(condition, instrument, arms)
        spec = ComparisonSpec(
            condition,
            instrument,
            keys,
            week=at_weeks,
            method=method,
            per_protocol=per_protocol,
            covariance=covariance,
        )
        with settings.open_store() as engine:
            report = run_compare(engine, spec)
    except user_errors() as error:
        if not as_json:
            raise
        say(one_line(error))
        typer.echo(json.dumps({"error": one_line(error), "exit_status": EXIT_COULD_NOT_RUN}))
        raise typer.Exit(EXIT_COULD_NOT_RUN) from None
    typer.echo(report.to_json() if as_json else report.to_text())


@app.command()
def report(
    ctx: typer.Context,
    quarter: Annotated[
        str | None,
        typer.Option(help="Calendar quarter, e.g. 2025Q3; default the latest complete one."),
    ] = None,
    clinic: Annotated[
        str | None, typer.Option(help="One clinic's report (clinic key); default all.")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for the report files.", callback=_folder)
    ] = Path("reports"),
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also print a PDF with headless Chromium.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with status 2 when the quarter has no data.")
    ] = False,
) -> None:
    """Write the quarterly outcomes report: one self-contained HTML file (and a PDF).

    Exit status: 0 on success; 2 when the options, the store or Chromium do not allow it,
    and, with --strict, when the quarter holds no episode and no session.
    """
    from sqlalchemy.engine import make_url

    from ionto.progress import progress_bar
    from ionto_analytics.report import write_report

    settings = _settings(ctx)
    with (
        settings.open_store() as engine,
        progress_bar(f"report {quarter or 'latest complete quarter'}", unit="steps") as advance,
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
    typer.echo(f"html: {files.html.resolve()}")
    if files.pdf is not None:
        typer.echo(f"pdf: {files.pdf.resolve()}")
    if files.report.empty:
        typer.echo(f"warning: {files.report.brief.warning}", err=True)
        if strict:
            raise typer.Exit(2)


@app.command()
def demo(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option(help="Folder for the demo's exports.", callback=_folder)
    ] = Path("demo"),
    patients: Annotated[int | None, typer.Option(help="Number of patients.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the emulator.")] = 0,
) -> None:
    """Run the main job end to end on the demo store and say where the results are."""
    from ionto.demo import run_demo

    settings = _settings(ctx)
    with settings.open_store(Access.WRITE) as engine:
        result = run_demo(engine, out, patients=patients, seed=seed, console=settings.console)
    typer.echo(f"imported: {json.dumps(result.import_summary['files'])}")
    typer.echo(f"exports: {result.exports_dir.resolve()}")
    typer.echo(f"ground truth: {result.ground_truth.resolve()}")
    typer.echo(f"store: {result.store_url}")
    typer.echo(f"quarterly report: {result.report.resolve()}")


@study_app.command("run")
def study_run(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="The study spec (study.yaml).")],
    site: Annotated[str, typer.Option(help="This site's name in the package, e.g. north.")],
    out: Annotated[
        Path, typer.Option(help="Folder for the results package.", callback=_folder)
    ] = Path("results"),
) -> None:
    """Run every analysis of a study spec on this site's store; write one checked package.

    The spec is validated before the store is opened; only aggregates leave (no row, no
    pseudonym, no count under the spec's small-cell threshold).
    """
    from data_schemas.study import load_study
    from ionto_analytics.study.command import run_study

    study = load_study(spec)
    with _settings(ctx).open_store() as engine:
        path = run_study(engine, study, out, site=site)
    typer.echo(f"package: {path.resolve()}")


@study_app.command("pool")
def study_pool(
    packages: Annotated[list[Path], typer.Argument(help="The sites' results packages (zip).")],
    out: Annotated[
        Path, typer.Option(help="Folder for the pooled results.", callback=_folder)
    ] = Path("pooled"),
    tau2: Annotated[
        str, typer.Option(help="Between-site variance: pm (Paule-Mandel), dl or reml.")
    ] = "pm",
) -> None:
    """Verify the sites' packages (one spec, untampered) and pool every contrast."""
    from ionto_analytics.study.command import pool_study

    pooled, files = pool_study(packages, out, tau2_method=tau2)  # type: ignore[arg-type]
    typer.echo(f"pooled {len(pooled.pooled)} contrast(s) from {len(pooled.sites)} site(s)")
    for kind, path in files.items():
        typer.echo(f"{kind}: {path.resolve()}")


def _usage_line(error: click_errors.UsageError) -> str:
    """A click usage error on one line, with a hint for ``--db`` after the subcommand."""
    command = error.ctx.command_path if error.ctx is not None else "ionto"
    if isinstance(error, click_errors.NoSuchOption) and error.option_name == "--db":
        rest = command.removeprefix("ionto").strip()
        return f"--db goes before the subcommand: ionto --db URL {rest}"
    return f"{error.format_message()} (see `{command} --help`)"


BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1"}
"""Set in the environment by :func:`main` unless already set, before numpy is imported.

Every product in a comparison or a report is small (a design of a few thousand rows) or
bound by memory: a second OpenBLAS thread only spins beside the first, and on a busy
2-core machine it cost 1.8 of the 4.5 CPU seconds of ``ionto compare`` on 10,000 episodes
(bench/RESULTS.md, "Registry scale").
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ionto`` on ``argv`` (default: the process arguments); return the exit status.

    Usage errors and every error a user can cause (:func:`ionto.messages.user_errors`)
    print one line on stderr and return 2; see the table of exit statuses at the top of
    this module.
    """
    for name, value in BLAS_THREADS.items():
        os.environ.setdefault(name, value)
    try:
        status = typer.main.get_command(app).main(
            args=argv, prog_name="ionto", standalone_mode=False
        )
    except click_errors.NoArgsIsHelpError:
        return EXIT_COULD_NOT_RUN  # the help is already printed
    except click_errors.UsageError as error:
        say(_usage_line(error))
        return error.exit_code
    except click_errors.ClickException as error:
        say(one_line(error))
        return error.exit_code
    except typer.Abort:
        say("aborted")
        return 1
    return status if isinstance(status, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
