"""The command line: parse options, make one library call, render. No Polars or YAML here."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.table import Table

from segcli import __version__, api, entry, options
from segcli.errors import EXIT_PENDING, SegcliError, SpecError, StateError, UsageError
from segcli.spec.diagnostics import render
from segcli.views.lastrun import local_time

app = typer.Typer(
    name="segcli",
    help="Marketing-automation segmentation and lead scoring from one YAML spec.\n\n"
    "Exit codes: 0 success, 1 a check failed, 2 invalid spec or usage, 3 input data error, "
    "4 state error, 5 run committed but deliveries pending.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# The state directory: a path, or a URI (SPEC §3.1).
StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="State directory: a path, or a URI such as s3://bucket/segcli/state "
        "(docs/engines.md). Default: .segcli/ beside the spec.",
    ),
]

ConfigOpt = Annotated[
    Path, typer.Option("-c", "--config", help="The spec file.", show_default=True)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")]
DEFAULT_CONFIG = Path("segments.yaml")


_display_type_rich = typer.core.TyperOption.display_type_rich


def _flag_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A flag takes no value, so its help shows no type (typer 0.29 shows `<bool>`, which
    reads as if `--json true` were accepted)."""
    if self.is_flag or self.count:
        return None
    return _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]
options.install()  # plain option values without importing Pydantic (segcli/options.py)


def _out() -> Console:
    """Standard output: on a terminal as wide as the terminal; to a pipe or a file as wide
    as the content, so that no table is cut or squeezed to 80 columns."""
    con = Console(soft_wrap=True, highlight=False)
    return con if con.is_terminal else Console(soft_wrap=True, highlight=False, width=10**6)


def _names(values: list[str] | None) -> list[str] | None:
    """Segment names given as repeats (`--segment a --segment b`), comma-separated (`a,b`),
    or both."""
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def _fail(exc: SegcliError, as_json: bool, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exc()
    if isinstance(exc, SpecError):
        if as_json:
            print(
                json.dumps(
                    {
                        "ok": False,
                        "exit_code": exc.exit_code,
                        "diagnostics": [d.to_json() for d in exc.diagnostics],
                    },
                    indent=2,
                )
            )
        else:
            sys.stderr.write(render(exc.diagnostics) + "\n")
    elif as_json:
        print(json.dumps({"ok": False, "exit_code": exc.exit_code, "error": exc.message}, indent=2))
    else:
        # Several problems (one per line) read as one error with indented continuation lines.
        sys.stderr.write("error: " + exc.message.replace("\n", "\n  ") + "\n")
    raise typer.Exit(exc.exit_code)


def guarded(fn: Callable[[], Any], as_json: bool, debug: bool) -> Any:
    """The one error boundary: SegcliError -> message + exit code; tracebacks only with --debug."""
    try:
        return fn()
    except KeyboardInterrupt:  # exit codes are 0-5 only (SPEC §5): 4, like a state error
        sys.stderr.write("interrupted\n")
        raise typer.Exit(4) from None
    except Exception as exc:
        if entry.interrupted() and not debug:
            # Ctrl-C that came out as another error: raised in Python code a library (Polars)
            # was calling back, it cannot propagate there, and the library fails its own way.
            sys.stderr.write("interrupted\n")
            raise typer.Exit(4) from None
        if isinstance(exc, SegcliError):
            _fail(exc, as_json, debug)
        if isinstance(exc, OSError):  # a place that cannot be read or written (disk, bucket)
            if debug:
                raise
            _fail(StateError(f"could not read or write: {exc}"), as_json, debug)
        # An internal bug: say so plainly, still within 0-5.
        if debug:
            raise
        # One line: a library's message may append pages of context (Polars: its query plan).
        first = (str(exc).strip().splitlines() or [""])[0]
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {first} "
            "(rerun with --debug for the traceback)\n"
        )
        raise typer.Exit(4) from None


def _write_file(path: Path, data: bytes, as_json: bool, debug: bool) -> None:
    """Write a file a command was asked for (atomically); a directory, a full disk or a
    read-only place is exit 4 naming the path, never a traceback."""
    from segcli.fs import atomic_write_bytes, write_error

    def write() -> None:
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise write_error(exc, "write", path) from exc

    guarded(write, as_json, debug)


@app.command()
def validate(
    config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False, debug: DebugOpt = False
) -> None:
    """Check the spec and the sources' schemas; nothing is computed."""
    project = guarded(lambda: api.load(config), as_json, debug)
    spec = project.spec
    summary = {
        "ok": True,
        "file": str(config),
        "sources": len(spec.sources),
        "segments": len(spec.segments),
        "models": len(spec.scoring),
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        counts = [
            _count(len(spec.sources), "source"),
            _count(len(spec.segments), "segment"),
            _count(len(spec.scoring), "scoring model"),
        ]
        _out().print(f"{config}: ok — {', '.join(counts)}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


KeepRunsOpt = Annotated[
    int | None,
    typer.Option(
        "--keep-runs",
        help="Keep the state of only the newest N runs (overrides "
        "`state: {keep_runs: N}` in the spec).",
    ),
]


@app.command()
def run(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Evaluate at this date or "
            "datetime (naive = project timezone). Default: now (UTC).",
        ),
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            help="Run only this segment (and what it depends on). Repeatable, or "
            "comma-separated: a,b.",
        ),
    ] = None,
    refresh: Annotated[
        list[str] | None,
        typer.Option(
            "--refresh",
            help="Recompute this static or semi_dynamic segment from scratch. Repeatable, "
            "or comma-separated: a,b.",
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Output directory: a path, or a URI such as s3://bucket/segcli/out "
            "(docs/engines.md). Default: out/ beside the spec.",
        ),
    ] = None,
    state: StateOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Compute and print; write nothing (neither outputs nor state)."
        ),
    ] = False,
    keep_runs: KeepRunsOpt = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Where the plan runs: polars, duckdb or spark (default: the spec's `engine:`, "
            "else polars).",
        ),
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option(
            "--spark-master",
            help="With --engine spark: local[N], spark://HOST:PORT or sc://HOST:PORT (Spark "
            "Connect). Default: $SEGCLI_SPARK_MASTER, else the spec's engine master, else "
            "local[2].",
        ),
    ] = None,
    no_actions: Annotated[
        bool,
        typer.Option(
            "--no-actions",
            help="Commit the run but send no on_enter/on_leave deliveries: they stay pending "
            "(exit 5) for `segcli deliver`.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compute segments and scores in one plan, update the state, write the outputs, then
    deliver the on_enter/on_leave actions."""
    err = _err()
    live = err.is_terminal and not as_json

    timezone = "UTC"

    def work() -> api.RunResult:
        nonlocal timezone
        project = api.load(config)
        timezone = project.spec.timezone
        kwargs: dict[str, Any] = dict(
            as_of=as_of,
            segments=_names(segment),
            refresh=_names(refresh),
            out_dir=out,
            state_dir=state,
            fmt=fmt,
            dry_run=dry_run,
            keep_runs=keep_runs,
            engine=engine,
            actions=not no_actions,
            spark_master=spark_master,
        )
        if live:
            with err.status("evaluating segments…") as status:
                return api.run(project, progress=lambda msg: status.update(msg), **kwargs)
        return api.run(project, progress=None if as_json else err.print, **kwargs)

    result: api.RunResult = guarded(work, as_json, debug)
    if as_json:
        print(json.dumps(result.to_json(), indent=2, default=str))
        _exit_if_pending(result.pending, as_json)
        return
    con = _out()
    for w in result.warnings:
        err.print(f"note: {w}")
    table = Table(title=f"segcli run {result.run_id} — as of {local_time(result.as_of, timezone)}")
    for col, justify in (
        ("segment", "left"),
        ("kind", "left"),
        ("members", "right"),
        ("entered", "right"),
        ("left", "right"),
        ("seconds", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in result.segments:
        table.add_row(
            s.name,
            s.kind,
            f"{s.size:,}",
            f"{s.entered or 0:,}",
            f"{s.left or 0:,}",
            f"{s.seconds:.3f}",
        )
    con.print(table)
    where = "nothing written (dry run)" if dry_run else f"outputs in {result.out_dir}"
    con.print(
        f"{len(result.segments)} segments; plan {result.plan_seconds:.2f} s (shared by all "
        f"segments), total {result.total_seconds:.2f} s; {where}"
    )
    if dry_run:
        for d in result.deliveries:
            con.print(f"would deliver {_delivery_text(d)}; nothing sent (dry run)")
        return
    _print_delivered(con, result.delivery)
    _exit_if_pending(result.pending, as_json)


def _delivery_text(d: Any) -> str:
    n = d.contacts
    return (
        f"{d.id}: {d.kind} to {d.target} ({n:,} contact{'s' if n != 1 else ''}, "
        f"{d.batches} batch{'es' if d.batches != 1 else ''})"
    )


def _print_delivered(con: Console, report: Any) -> None:
    for o in report.outcomes if report else []:
        if o.ok and o.sent:
            con.print(f"delivered {_delivery_text(o.delivery)} of run {o.delivery.run_id}")


def _exit_if_pending(pending: list[Any], as_json: bool) -> None:
    """Exit 5 naming the pending deliveries (the state is committed)."""
    if not pending:
        return
    if not as_json:
        n = len(pending)
        lines = "".join(f"\n  {p.line()}" for p in pending)
        sys.stderr.write(
            f"error: committed, but {n} deliver{'ies' if n != 1 else 'y'} "
            f"{'is' if n == 1 else 'are'} pending (retry with `segcli deliver`):{lines}\n"
        )
    raise typer.Exit(EXIT_PENDING)


@app.command()
def deliver(
    segment: Annotated[
        list[str] | None,
        typer.Option("--segment", help="Only this segment's deliveries. Repeatable."),
    ] = None,
    list_only: Annotated[
        bool, typer.Option("--list", help="Show what is pending and why; send nothing.")
    ] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Retry the pending on_enter/on_leave deliveries of committed runs; exit 5 if some
    are still pending."""
    report = guarded(
        lambda: api.deliver(api.load(config, with_data=False), state, segment, list_only),
        as_json,
        debug,
    )
    if as_json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        con = _out()
        _print_delivered(con, report)
        if list_only:
            for p in report.pending:
                con.print(f"pending {p.line()}")
            if not report.pending:
                con.print("nothing pending")
        elif not report.pending:
            con.print("nothing pending")
    if not list_only:
        _exit_if_pending(report.pending, as_json)


@app.command(name="compile")
def compile_(
    dialect: Annotated[
        str,
        typer.Option("--dialect", help="duckdb, spark, snowflake, bigquery, postgres or trino."),
    ],
    config: ConfigOpt = DEFAULT_CONFIG,
    segment: Annotated[
        list[str] | None,
        typer.Option("--segment", help="Only this segment's column. Repeatable, or a,b."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Evaluate at this date or datetime. Default: now (UTC)."),
    ] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print the SQL of the run for a warehouse: one SELECT over all contacts with the key,
    one boolean column per segment (every kind as dynamic) and one float column per model."""
    sql = guarded(
        lambda: api.compile_sql(api.load(config), dialect, as_of, _names(segment)), as_json, debug
    )
    if as_json:
        print(json.dumps({"ok": True, "dialect": dialect, "sql": sql}, indent=2))
    else:
        sys.stdout.write(sql)


@app.command()
def diff(
    name: Annotated[str, typer.Argument(help="Segment name.", metavar="NAME")],
    from_run: Annotated[
        str | None, typer.Option("--from", help="Run id (default: the run before --to).")
    ] = None,
    to_run: Annotated[
        str | None, typer.Option("--to", help="Run id (default: the last run).")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    state: StateOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Keys to list per side.")] = 50,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Who entered and who left a segment between two committed runs."""
    from segcli.views import commands as views

    d: views.Diff = guarded(
        lambda: views.diff(api.load(config, with_data=False), name, from_run, to_run, state),
        as_json,
        debug,
    )
    if as_json:
        print(json.dumps(d.to_json(), indent=2, default=str))
        return
    con = _out()
    con.print(f"{name}: {d.label('from')} -> {d.label('to')}")
    con.print(f"entered: {len(d.entered):,}   left: {len(d.left):,}")
    for label, keys in (("entered", d.entered), ("left", d.left)):
        if keys:
            shown = ", ".join(str(k) for k in keys[:limit])
            more = f" … (+{len(keys) - limit})" if len(keys) > limit else ""
            con.print(f"{label}: {shown}{more}")


@app.command()
def history(
    name: Annotated[
        str | None, typer.Argument(help="Segment name (default: all).", metavar="NAME")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Size, entered, left and deliveries (done, pending, failed) per committed run."""
    from segcli.views import commands as views
    from segcli.views.report import deliveries_text

    hist: views.History = guarded(
        lambda: views.history(api.load(config, with_data=False), name, state), as_json, debug
    )
    if as_json:
        print(json.dumps(hist, indent=2, default=str))
        return
    table = Table(title="segcli history" + (f" — {name}" if name else ""))
    for col in ("run", "as_of", "segment", "kind", "members", "entered", "left", "deliveries"):
        table.add_column(col, justify="right" if col in ("members", "entered", "left") else "left")
    for r in hist:
        table.add_row(
            r["run_id"],
            local_time(r["as_of"], hist.timezone),
            r["segment"],
            r["kind"],
            f"{r['size']:,}",
            f"{r['entered']:,}",
            f"{r['left']:,}",
            deliveries_text(r["deliveries"]),
        )
    _out().print(table)


# Where the last committed run's outputs are when they were moved after the run.
MovedOutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        help="Where the last run's outputs are, if moved (scores are read from there). "
        "Default: where that run wrote them.",
    ),
]


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Segment name.", metavar="NAME")],
    config: ConfigOpt = DEFAULT_CONFIG,
    state: StateOpt = None,
    out: MovedOutOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows (0 or more).")] = 20,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Contact or score columns to show, comma-separated. Default: all contact columns.",
        ),
    ] = None,
    scores: Annotated[
        bool, typer.Option("--scores", help="Add every scoring model's score columns.")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="table, csv or json (the member rows only).")
    ] = "table",
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Members of a segment after the last committed run, with contact and score columns."""
    from segcli.views import commands as views

    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    shown: views.Shown = guarded(
        lambda: views.show(
            api.load(config),
            name,
            out_dir=out,
            state_dir=state,
            limit=limit,
            columns=cols,
            scores=scores,
            fmt="json" if as_json else fmt,
        ),
        as_json,
        debug,
    )
    if as_json:
        print(json.dumps(shown.to_json(name), indent=2, default=str))
    elif fmt == "table":
        table = Table(
            title=f"{name}: {shown.total:,} members (showing {len(shown.rows)}) — "
            f"{shown.run.label()}"
        )
        for c in shown.columns:
            table.add_column(c)
        for r in shown.rows:
            table.add_row(*["" if v is None else _cell(v) for v in r])
        _out().print(table)
    else:
        _err().print(f"{name}: {shown.total:,} members — {shown.run.label()}")
        sys.stdout.write(shown.text)


def _cell(v: Any) -> str:
    """A table cell: times as ISO 8601 with their offset, floats without noise."""
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    if isinstance(v, float):
        return str(round(v, 4))
    return str(v)


@app.command()
def explain(
    name: Annotated[str | None, typer.Argument(help="Segment to explain.")] = None,
    contact: Annotated[
        str | None,
        typer.Option(
            "--contact", help="Explain one contact: each segment in or out, and its score by rule."
        ),
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Evaluate at this time. Default: the last committed run's as_of."
        ),
    ] = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """A segment's condition tree in words and its query plan (built from the sources'
    schemas: nothing is executed), or why a contact is in or out and its score by rule.
    Both show the last committed run unless --as-of is given, and say which."""
    from segcli.views import explain as explaining

    if (name is None) == (contact is None):
        _fail(UsageError("give a segment NAME or --contact KEY"), as_json, debug)

    def explained() -> explaining.Explanation:
        project = api.load(config)
        if name is not None:
            return explaining.explain_segment(project, name, as_of, state)
        assert contact is not None
        return explaining.explain_contact(project, contact, as_of, state)

    result: explaining.Explanation = guarded(explained, as_json, debug)
    if as_json:
        print(json.dumps(result.data, indent=2, default=str))
    else:
        sys.stdout.write("\n".join(result.lines) + "\n")


@app.command()
def check(
    config: ConfigOpt = DEFAULT_CONFIG,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit", help="Also write JUnit XML here (one test case per check and expectation)."
        ),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Check freshness as of this time. Default: now.")
    ] = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Validate, run the data checks and each segment's expectations; exit 1 if any fails."""
    from segcli.fs import atomic_write_bytes
    from segcli.views import commands as views
    from segcli.views.checks import junit_error_xml, junit_xml

    def work() -> views.CheckResult:
        try:
            return views.check(api.load(config), as_of=as_of, state_dir=state)
        except SegcliError as exc:
            # CI uploads the JUnit file `if: always()`: it reports why nothing was checked.
            if junit is not None:
                text = render(exc.diagnostics) if isinstance(exc, SpecError) else exc.message
                kind = type(exc).__name__.removesuffix("Error").lower()
                with contextlib.suppress(SegcliError, OSError):
                    atomic_write_bytes(junit, junit_error_xml(text, kind))
            raise

    result: views.CheckResult = guarded(work, as_json, debug)
    if junit is not None:
        _write_file(junit, junit_xml(result.outcomes, result.seconds), as_json, debug)
    if as_json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        table = Table(title=f"segcli check — {config}")
        for col in ("result", "check", "detail"):
            table.add_column(col)
        for o in result.outcomes:
            detail = o.detail + (
                "\n" + "\n".join(f"e.g. {e}" for e in o.examples)
                if o.examples and not o.passed
                else ""
            )
            table.add_row("PASS" if o.passed else "FAIL", o.name, detail)
        con = _out()
        con.print(table)
        con.print(f"{len(result.outcomes) - result.failed} of {len(result.outcomes)} checks passed")
    if result.failed:
        raise typer.Exit(1)


@app.command()
def report(
    config: ConfigOpt = DEFAULT_CONFIG,
    html_file: Annotated[
        Path | None,
        typer.Option("--html", help="Write a self-contained HTML page with charts to this file."),
    ] = None,
    out: MovedOutOpt = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Segment sizes, entered/left per run, overlaps and score distributions."""
    from segcli.views import commands as views
    from segcli.views.report import deliveries_text

    rep: Any = guarded(
        lambda: views.report(api.load(config, with_data=False), out_dir=out, state_dir=state),
        as_json,
        debug,
    )
    if html_file is not None:
        from segcli.views.html import render_html

        page = render_html(rep, f"segcli report — {config}").encode()
        _write_file(html_file, page, as_json, debug)
    if as_json:
        print(json.dumps(rep.to_json(), indent=2, default=str))
        return
    con = _out()
    if rep.last is not None:
        con.print(f"last committed {rep.last.label()}")
    t = Table(title="segment sizes")
    t.add_column("segment")
    t.add_column("members", justify="right")
    for n, size in rep.sizes.items():
        t.add_row(n, f"{size:,}")
    con.print(t)
    if rep.runs:
        t = Table(title="runs")
        for col in ("run", "as_of", "entered", "left", "deliveries"):
            t.add_column(col, justify="right" if col in ("entered", "left") else "left")
        for r in rep.runs:
            t.add_row(
                r["run_id"],
                rep.local(r["as_of"]),
                f"{sum(v or 0 for v in r['entered'].values()):,}",
                f"{sum(v or 0 for v in r['left'].values()):,}",
                deliveries_text(r["deliveries"]),
            )
        con.print(t)
    names = rep.overlap_names
    pairs = sorted(
        ((rep.jaccard(i, j), i, j) for i in range(len(names)) for j in range(i + 1, len(names))),
        reverse=True,
    )[:10]
    t = Table(title="largest overlaps")
    for col in ("segment a", "segment b", "shared", "jaccard"):
        t.add_column(col, justify="right" if col in ("shared", "jaccard") else "left")
    for jac, i, j in pairs:
        t.add_row(names[i], names[j], f"{rep.overlap_counts[i][j]:,}", f"{jac:.3f}")
    con.print(t)
    for hg in rep.histograms:
        t = Table(
            title=f"score {hg.model}: mean {hg.mean:.2f}, {hg.ready_share:.1f}% at or "
            f"above sales-ready {hg.sales_ready:g}"
        )
        t.add_column("score from", justify="right")
        t.add_column("to", justify="right")
        t.add_column("contacts", justify="right")
        for k, c in enumerate(hg.counts):
            t.add_row(f"{hg.edges[k]:g}", f"{hg.edges[k + 1]:g}", f"{c:,}")
        con.print(t)
    if html_file is not None:
        con.print(f"wrote {html_file}")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Directory for the new project.")] = Path("."),
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Create a ready project: segments.yaml with every feature, sample data, .gitignore."""
    from segcli.demo.init import init_project

    written: list[Path] = guarded(lambda: init_project(directory), as_json, debug)
    if as_json:
        print(json.dumps({"written": [str(p) for p in written]}, indent=2))
        return
    con = _out()
    for p in written:
        con.print(f"created {p}")
    con.print(
        f"\nnext steps:\n  cd {directory}\n  segcli validate\n"
        "  segcli run --as-of 2026-11-20   # the sample data ends on 2026-11-20\n"
        "  segcli show mql\n  segcli check"
    )


@app.command()
def schema(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the schema to this file instead of printing it."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='With --out, print {"written": FILE} (the schema itself is JSON).'
        ),
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Print the JSON Schema of segments.yaml (for editor autocompletion and checks)."""
    from segcli.spec.schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    _write_file(out, text.encode(), as_json, debug)
    if as_json:
        print(json.dumps({"written": str(out)}, indent=2))
    else:
        _out().print(f"wrote {out}")


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the exports to.")],
    contacts: Annotated[int, typer.Option("--contacts", help="Number of contacts.")] = 3000,
    email_events: Annotated[
        int | None,
        typer.Option("--email-events", help="Email event rows (default ~40 per contact)."),
    ] = None,
    web_events: Annotated[
        int | None, typer.Option("--web-events", help="Web event rows (default ~25 per contact).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 42,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="csv or parquet for contacts, CRM and purchases (events are always Parquet).",
        ),
    ] = "parquet",
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write realistic synthetic exports of any size (seeded), for demos and benchmarks."""
    from segcli.views import commands as views

    paths: dict[str, Any] = guarded(
        lambda: views.sample(
            out,
            contacts=contacts,
            email_events=email_events,
            web_events=web_events,
            seed=seed,
            fmt=fmt,
        ),
        as_json,
        debug,
    )
    if as_json:
        print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    else:
        for k, v in paths.items():
            _out().print(f"{k}: {v}")


def version_callback(value: bool) -> None:
    if value:
        print(f"segcli {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """segcli: segments and lead scores from one YAML spec, in one pass over your exports."""


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault(
        "POLARS_MAX_THREADS", os.environ.get("SEGCLI_THREADS", "") or str(os.cpu_count() or 2)
    )
    app()
