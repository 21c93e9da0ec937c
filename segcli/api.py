"""The library facade: every command is one call here. Returns values, never prints."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from segcli import __version__, storage
from segcli.engines import polars as polars_engine
from segcli.engines.catalog import Catalog, catalog_for, only_spark
from segcli.engines.history import Histories
from segcli.engines.polars import Evaluation
from segcli.errors import SegcliError, SpecError, StateError, UsageError
from segcli.fs import EngineFrame, fsync_dir, interrupts_deferred, write_error
from segcli.outputs import delivery as handoff
from segcli.outputs.files import (
    claim_out,
    discard_stages,
    publish,
    publish_pending,
    remove_stray_temps,
    stage_dir,
    write_frames,
    write_json,
)
from segcli.planning.history import history_refs
from segcli.planning.planner import Plan, build_plan
from segcli.spec import graph
from segcli.spec import language as lang
from segcli.spec import load as yamlnodes
from segcli.spec import model as m
from segcli.spec.timeutil import parse_as_of
from segcli.spec.validate import file_problem, validate
from segcli.state import fingerprint, kinds, outbox
from segcli.state import history as past_runs
from segcli.state.outbox import Delivery
from segcli.state.store import Manifest, StateDir
from segcli.storage import Loc


@dataclass
class Project:
    """A loaded, validated spec with its data catalog."""

    spec: m.Spec
    catalog: Catalog
    text: str

    def out_dir(self, given: str | Path | None = None) -> Loc:
        """The output directory: `given` (a path or a URI), or out/ beside the spec."""
        return storage.location(given) if given else Path(self.spec.base_dir) / "out"

    def state(self, given: str | Path | None = None) -> StateDir:
        """The state directory: `given` (a path or a URI), or .segcli/ beside the spec."""
        where = storage.location(given) if given else Path(self.spec.base_dir) / ".segcli"
        return StateDir(where)

    @property
    def fingerprint(self) -> str:
        """The spec's text, its scoring models (rules_file rows included) and list files."""
        return fingerprint.spec_fingerprint(self.spec, self.text)


def load(config: str | Path, *, with_data: bool = True) -> Project:
    """Read, parse and validate a spec (and, with_data, its sources' schemas).

    Raises SpecError with every diagnostic of the file, or DataError for unreadable sources.
    """
    path = Path(config)
    problem = file_problem(path)  # stat first: a directory or a FIFO is never opened
    if problem == "not found":
        raise UsageError(f"spec file not found: {path}")
    if problem:
        raise UsageError(f"spec file {path} {problem}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"spec file {path} cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"spec file {path} is not UTF-8 text: {exc}") from exc
    file = str(path)
    root, diags = yamlnodes.load(text, file)
    if root is None:
        raise SpecError(diags)
    base = path.resolve().parent
    catalogs: dict[str, Catalog] = {}

    def schema_of(src: m.Source) -> dict[str, pl.DataType]:
        if "cat" not in catalogs:
            catalogs["cat"] = Catalog(str(base), _tz(root), {})
        cat = catalogs["cat"]
        cat.sources[src.name] = src
        if src.remote is not None and cat.table_schema is None:
            cat.table_schema = _table_schemas(root)
        return cat.schema(src.name)

    # Loader findings (duplicate keys, bad dates) are reported together with the validator's.
    spec, problems = validate(root, file, base, schema_of if with_data else None, diags)
    if spec is None:
        raise SpecError(problems)
    catalog = catalogs.get("cat") or catalog_for(spec)
    catalog.timezone = spec.timezone
    return Project(spec, catalog, text)


def _table_schemas(root: yamlnodes.YNode) -> Any:
    """The columns of `table:` sources, from the Spark catalog (SPEC §3.1): a session on
    the spec's `engine: {master}` (else --spark-master's environment default), started when
    the first table source is checked."""
    from segcli.engines import spark as spark_engine
    from segcli.engines.spark_read import table_schema

    node = root.value.get("engine") if root.is_map else None
    master = None
    if node is not None and node.is_map and "master" in node.value:
        value = node.value["master"].value
        master = value if isinstance(value, str) else None
    spark: list[Any] = []

    def schema(src: m.Source) -> dict[str, pl.DataType]:
        if not spark:
            spark.append(spark_engine.session(spark_engine.master_of(None, master)))
        return table_schema(spark[0], src)

    return schema


def _tz(root: yamlnodes.YNode) -> str:
    node = root.value.get("timezone") if root.is_map else None
    return str(node.value) if node is not None and isinstance(node.value, str) else "UTC"


@dataclass
class SegmentResult:
    name: str
    kind: str
    size: int
    seconds: float
    entered: int | None = None
    left: int | None = None

    def summary(self, **extra: Any) -> dict[str, Any]:
        """kind, size, entered, left (plus `extra`), as run.json and the manifest keep them."""
        return {
            "kind": self.kind,
            "size": self.size,
            "entered": self.entered,
            "left": self.left,
            **extra,
        }


@dataclass
class RunResult:
    run_id: str
    as_of: datetime
    out_dir: Loc | None
    segments: list[SegmentResult]
    plan_seconds: float
    total_seconds: float
    warnings: list[str] = field(default_factory=list)
    files: list[Loc] = field(default_factory=list)
    # key + one boolean column per evaluated segment (members after kinds and overrides),
    # and key + one score column per model: the run's results as frames, for notebooks.
    memberships: pl.DataFrame | None = field(default=None, repr=False)
    scores: pl.DataFrame | None = field(default=None, repr=False)
    deliveries: list[Delivery] = field(default_factory=list)  # this run's (or would-be) ones
    delivery: handoff.Report | None = None  # what was sent after the commit; what is pending
    engine: str = "polars"  # where the plan ran (SPEC §3.1)

    @property
    def pending(self) -> list[handoff.Pending]:
        return self.delivery.pending if self.delivery else []

    def to_json(self) -> dict[str, Any]:
        sent = self.delivery.to_json() if self.delivery else {"delivered": [], "pending": []}
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "engine": self.engine,
            "plan_seconds": round(self.plan_seconds, 3),
            "total_seconds": round(self.total_seconds, 3),
            "segments": [{**s.__dict__, "seconds": round(s.seconds, 4)} for s in self.segments],
            "warnings": self.warnings,
            "deliveries": [
                {"delivery": d.id, "kind": d.kind, "target": d.target, "contacts": d.contacts}
                | {"batches": d.batches}
                for d in self.deliveries
            ],
            **sent,
        }


def resolve_as_of(project: Project, as_of: str | datetime | None) -> datetime:
    """The run's as_of as a UTC instant (naive text is read in the project timezone)."""
    if isinstance(as_of, datetime):
        return as_of.astimezone(UTC)
    try:
        return parse_as_of(as_of, project.spec.timezone)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def check_segment_names(project: Project, names: list[str] | None) -> None:
    """UsageError naming any segment that the spec does not define."""
    from segcli.spec.validate import hint

    for n in names or []:
        if n not in project.spec.segments:
            h = hint(n, list(project.spec.segments))
            raise UsageError(f"unknown segment '{n}'" + (f" ({h})" if h else ""))


def compute(
    project: Project,
    as_of: str | datetime | None = None,
    segments: list[str] | None = None,
    detail: bool = False,
    engine: str | None = None,
    spark_master: str | None = None,
) -> tuple[Evaluation, datetime]:
    """Evaluate segments (and what they depend on) and scores; nothing is written or read
    from state, so every segment is evaluated as on a first run."""
    check_segment_names(project, segments)
    at = resolve_as_of(project, as_of)
    plan = make_plan(project, at, segments, detail=detail)
    return execute(project, plan, engine=engine, spark_master=spark_master), at


def make_plan(
    project: Project,
    as_of: datetime,
    segments: list[str] | None = None,
    modes: dict[str, str] | None = None,
    detail: bool = False,
    history: bool = False,
) -> Plan:
    """The run's plan at `as_of` (reads the sources' schemas, never their rows); with
    `history`, its history leaves read the state's history (given to `execute`)."""
    names = list(project.spec.sources)
    schemas = polars_engine.schemas(project.catalog, names)
    return build_plan(project.spec, schemas, as_of, segments, modes, detail, history)


ENGINES = lang.ENGINES  # one list: the spec's `engine:` accepts the same names


def engine_of(project: Project, engine: str | None) -> str:
    """The engine a run uses: the one asked for, else the spec's `engine:`, else polars."""
    if engine:
        return engine
    return project.spec.engine.name if project.spec.engine else "polars"


def execute(
    project: Project,
    plan: Plan,
    previous: dict[str, pl.Series | None] | None = None,
    engine: str | None = None,
    histories: Histories | None = None,
    spark_master: str | None = None,
) -> Evaluation:
    """Run a plan on an engine: polars, duckdb or spark (docs/engines.md); None: the spec's
    `engine:`, else polars. `spark_master`: where Spark runs (else $SEGCLI_SPARK_MASTER,
    else the spec's `engine: {master}`, else local[2])."""
    engine = engine_of(project, engine)
    remote = [src for src in project.spec.sources.values() if src.remote is not None]
    if remote and engine != "spark":
        raise UsageError(only_spark(remote[0]))
    if engine == "duckdb":
        from segcli.engines import duckdb as duckdb_engine

        return duckdb_engine.execute(plan, project.catalog, previous, histories)
    if engine == "spark":
        from segcli.engines import spark as spark_engine

        master, settings = spark_settings(project, spark_master)
        return spark_engine.execute(plan, project.catalog, previous, master, settings, histories)
    if engine != "polars":
        raise UsageError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    return polars_engine.execute(plan, project.catalog, previous, histories)


def spark_settings(project: Project, spark_master: str | None) -> tuple[str, dict[str, str]]:
    """Where Spark runs and the spec's Spark settings (`engine: {name: spark, ...}`)."""
    from segcli.engines import spark as spark_engine

    conf = project.spec.engine if project.spec.engine else None
    if conf is not None and conf.name != "spark":
        conf = None
    master = spark_engine.master_of(spark_master, conf.master if conf else None)
    return master, dict(conf.conf) if conf else {}


def read_past(
    project: Project, state: StateDir, manifest: Manifest, names: list[str], at: datetime
) -> past_runs.Past:
    """What the history leaves of a run over `names` read from the state (SPEC §2.6): the
    segments a history option refers to and the stored values of `ever` columns, as of the
    committed runs at or before `at`."""
    segments, columns = history_refs(project.spec)
    wanted = [n for n in segments if n in names]
    types = {c: _column_type(project, c) for c in columns}
    key = project.spec.contacts.key
    return past_runs.read_past(state, manifest, key, wanted, columns, at, types)


def _column_type(project: Project, column: str) -> pl.DataType | None:
    """The type of a contacts column, or of `SOURCE.COL` of a relation-one source, as the
    sources are read now (None when it cannot be told without reading rows)."""
    source, dot, name = column.partition(".")
    if not (dot and source in project.spec.sources and source != "contacts"):
        source, name = "contacts", column
    try:
        return project.catalog.schema(source).get(name)
    except SegcliError:
        return None


def compile_sql(
    project: Project,
    dialect: str,
    as_of: str | datetime | None = None,
    segments: list[str] | None = None,
) -> str:
    """The SQL of a run for a warehouse (SPEC §3.1): one SELECT over all contacts with the
    key, one boolean column per wanted segment (every kind as dynamic) and one float column
    per scoring model."""
    from segcli.engines.sql_compile import compile_plan

    check_segment_names(project, segments)
    plan = make_plan(project, resolve_as_of(project, as_of), segments)
    return compile_plan(project.spec, project.catalog, plan, dialect, segments)


def fingerprints(project: Project, names: list[str]) -> dict[str, str]:
    """Each segment's definition fingerprint: its definition, list files and the scoring
    models it uses (state/fingerprint.py)."""
    return {n: fingerprint.segment_fingerprint(project.spec, n) for n in names}


def preview(
    project: Project,
    as_of: str | datetime | None = None,
    state_dir: str | Path | None = None,
    detail: bool = False,
) -> tuple[Evaluation, datetime]:
    """Evaluate every segment as a run would (reading, never writing, the state)."""
    spec = project.spec
    at = resolve_as_of(project, as_of)
    state = project.state(state_dir)
    manifest = state.read_manifest()
    names = graph.order(spec.segments)
    carry, _ = kinds.carry(spec, names, manifest, state, set(), fingerprints(project, names))
    past = read_past(project, state, manifest, names, at)
    modes = {n: c.mode for n, c in carry.items()}
    plan = make_plan(project, at, None, modes, detail, history=True)
    previous = {n: c.previous for n, c in carry.items()}
    return execute(project, plan, previous, histories=past.inputs), at


def run(
    project: Project,
    *,
    as_of: str | datetime | None = None,
    segments: list[str] | None = None,
    refresh: list[str] | None = None,
    out_dir: str | Path | None = None,
    state_dir: str | Path | None = None,
    fmt: str = "parquet",
    dry_run: bool = False,
    keep_runs: int | None = None,
    progress: Any = None,
    engine: str | None = None,
    actions: bool = True,
    spark_master: str | None = None,
) -> RunResult:
    """Compute every selected segment and score in one plan, apply kinds and state, write.

    A run commits completely or not at all: outputs are written file by file (atomically),
    then the state's snapshots, then its manifest, which is the commit point. The run's
    deliveries (on_enter/on_leave) are committed with it in the outbox and sent after the
    commit (unless `actions` is False); what stays pending is in `result.pending`.
    """
    if fmt not in ("parquet", "csv"):
        raise UsageError(f"unknown format {fmt!r}: use parquet or csv")
    if keep_runs is not None and keep_runs < 1:
        raise UsageError(f"keep_runs must be at least 1, not {keep_runs}")
    on_spark = engine_of(project, engine) == "spark"
    if fmt == "csv" and on_spark:
        raise UsageError(
            "the spark engine writes its outputs as Parquet (Spark writes each file): "
            "use --format parquet"
        )
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    spec = project.spec
    key = spec.contacts.key
    check_segment_names(project, segments)
    check_segment_names(project, refresh)
    if segments and refresh:  # --refresh NAME runs NAME even when --segment picks others
        segments = [*segments, *(n for n in refresh if n not in segments)]
    at = resolve_as_of(project, as_of)
    state = project.state(state_dir)
    out = project.out_dir(out_dir)
    lock = None
    try:
        with interrupts_deferred():  # Ctrl-C here must not leave a lock behind
            lock = None if dry_run else state.lock()
        manifest = state.read_manifest()
        if lock is not None:
            prepare_out(out, manifest)
        last = manifest.last_as_of
        if last is not None and at < last and not dry_run:
            raise StateError(
                f"as_of {at.isoformat()} is before the last committed run's as_of "
                f"{last.isoformat()} (run {manifest.runs[-1]['run_id']}); use --dry-run to "
                "look at the past without changing the state"
            )
        notes = [lock.took_over] if lock and lock.took_over else []
        names = graph.order(spec.segments, segments)
        refresh_set = set(refresh or [])
        say("reading state")
        carry, changed = kinds.carry(
            spec, names, manifest, state, refresh_set, fingerprints(project, names), not on_spark
        )
        notes += changed
        past = read_past(project, state, manifest, names, at)
        say("evaluating the plan")
        modes = {n: c.mode for n, c in carry.items()}
        plan = make_plan(project, at, segments, modes, history=True)
        ctx = _Run(
            project=project,
            state=state,
            manifest=manifest,
            out=out,
            at=at,
            fmt=fmt,
            dry_run=dry_run,
            keep_runs=keep_runs,
            say=say,
            actions=actions,
            refresh=refresh_set,
            notes=notes,
            t0=t0,
        )
        if on_spark:
            return _run_on_spark(ctx, plan, past, carry, spark_master)
        previous = {n: c.previous for n, c in carry.items()}
        ev = execute(project, plan, previous, engine, past.inputs, spark_master)
        run_id = uuid.uuid4().hex[:12]
        stage = stage_dir(out, run_id)
        results: list[SegmentResult] = []
        staged = _Staged()
        for batch in _batches(ev.segments, ev.contact_keys().len()):
            t = time.perf_counter()
            moves = kinds.transitions(
                ev.membership_rows(batch, kinds.SEG),
                ev.contact_keys(),
                [carry[n].snapshot for n in batch],
                [n in refresh_set and carry[n].snapshot is not None for n in batch],
                key,
                at,
            )
            took = (time.perf_counter() - t) / len(batch)
            for name, move in zip(batch, moves, strict=True):
                snap, changes, members = move.snapshot, move.changes, move.members
                if name in past.segments:  # carried so that pruning does not forget it
                    snap = past_runs.with_summary(snap, past.segments[name], changes, key, at)
                staged.snapshots[name] = snap
                staged.changes[name] = changes
                if not dry_run:
                    staged.writes.append((members, stage / "segments" / name))
                    staged.writes.append((changes, stage / "changes" / name))
                entered = int((changes["change"] == "entered").sum())
                results.append(
                    SegmentResult(
                        name,
                        spec.segments[name].kind,
                        members.height,
                        took,
                        entered,
                        changes.height - entered,
                    )
                )
                say(f"segment {name}: {members.height} members")
        if spec.scoring and not dry_run:
            staged.writes.append((scores_frame(project, ev), stage / "scores"))
        result = RunResult(
            run_id,
            at,
            None if dry_run else out,
            results,
            ev.seconds,
            0.0,
            [*notes, *ev.warnings],
        )
        result.engine = engine_of(project, engine)
        result.memberships = ev.memberships()
        result.scores = ev.scores()
        current = {c: ev.current_values(c) for c in plan.history_fields}
        stored = past.to_store(current, key, at) if not dry_run else None
        _finish(ctx, result, staged, stored)
        result.total_seconds = time.perf_counter() - t0
        return result
    finally:
        if lock is not None:
            with interrupts_deferred():
                lock.release()


def _finish(
    ctx: _Run,
    result: RunResult,
    staged: _Staged,
    stored: tuple[Mapping[str, tuple[pl.DataFrame | EngineFrame, str]], list[str]] | None,
) -> None:
    """A run's end on every engine: stage its deliveries, write its outputs, commit the
    state, then deliver (unless `actions` is False). `stored`: the `ever: true` values to
    store and notes on them (None on a dry run)."""
    project, state = ctx.project, ctx.state
    result.deliveries = handoff.stage(
        project.spec,
        project.catalog,
        state.path,
        result.run_id,
        result.as_of,
        staged.changes,
        write=not ctx.dry_run,
    )
    if ctx.dry_run or stored is None:
        return
    fields, field_notes = stored
    result.warnings += field_notes
    ctx.say("writing outputs")
    _write_and_commit(
        project,
        result,
        ctx.fmt,
        staged.writes,
        ctx.manifest,
        state,
        staged.snapshots,
        ctx.keep_runs,
        ctx.say,
        fields,
    )
    runs = state.read_manifest().runs
    outbox.clean(state.path, runs)
    if ctx.actions:
        ctx.say("delivering")
        result.delivery = handoff.deliver(state.path, runs, project.spec.contacts.key)
    else:
        result.delivery = handoff.Report([], handoff.pending(state.path, runs))


def _run_on_spark(
    ctx: _Run,
    plan: Plan,
    past: past_runs.Past,
    carry: dict[str, kinds.Carry],
    spark_master: str | None,
) -> RunResult:
    """The rest of `run` on Spark: the plan's per-contact result, the kinds' transitions,
    the snapshots and the outputs stay on Spark and are written by it, one Parquet file each
    (segcli.engines.spark_state); the driver gets counts, and the changes of segments with
    on_enter / on_leave actions, which it delivers."""
    from segcli.engines import spark as spark_engine
    from segcli.engines import spark_state

    project, at, say = ctx.project, ctx.at, ctx.say
    spec = project.spec
    key = spec.contacts.key
    master, settings = spark_settings(project, spark_master)
    # Only a kind that keeps members reads its previous set (planner.kind_rule).
    previous: spark_engine.Previous = {
        n: c.path for n, c in carry.items() if c.mode in ("accumulate", "frozen")
    }
    ev = spark_engine.evaluate(plan, project.catalog, previous, master, settings, past.inputs)
    run_id = uuid.uuid4().hex[:12]
    stage = stage_dir(ctx.out, run_id)
    try:
        t = time.perf_counter()
        names = ev.segments
        paths: dict[str, Loc | None] = {n: carry[n].path for n in names}
        refreshed = {n for n in ctx.refresh if paths.get(n) is not None}
        summaries = {n: ev.send(f) for n, f in past.segments.items()}
        moves: spark_state.Transitions = ev.guarded(
            lambda: spark_state.transitions(
                ev.spark,
                ev.result,
                names,
                key,
                ev.key_type,
                paths,
                at,
                refreshed,
                stage / ".spark",
                summaries,
            )
        )
        if not ctx.dry_run:
            claim_out(ctx.out)  # before Spark makes the staging folder in it
            say("Spark is writing the snapshots, members and changes")
            try:
                moves.write()
            except OSError as exc:
                raise write_error(exc, "write the run's outputs into", stage) from exc
        acting = [n for n in names if spec.segments[n].on_enter or spec.segments[n].on_leave]
        staged = _Staged(ev.guarded(lambda: moves.changes_of(acting)))  # delivered here
        took = (time.perf_counter() - t) / max(len(names), 1)
        results: list[SegmentResult] = []
        for name in names:
            size, entered, left = moves.counts[name]
            staged.snapshots[name] = moves.snapshot(name)
            if not ctx.dry_run:
                staged.writes.append((moves.member_file(name), stage / "segments" / name))
                staged.writes.append((moves.change_file(name), stage / "changes" / name))
            seg = spec.segments[name]
            results.append(SegmentResult(name, seg.kind, size, took, entered, left))
            say(f"segment {name}: {size} members")
        if spec.scoring and not ctx.dry_run:
            staged.writes.append((spark_state.scores(ev.result, plan, spec), stage / "scores"))
        out = None if ctx.dry_run else ctx.out
        result = RunResult(run_id, at, out, results, ev.seconds, 0.0, [*ctx.notes, *ev.warnings])
        result.engine = "spark"
        stored = None
        if not ctx.dry_run:  # written by Spark: no contact's value comes to the driver
            stored = ev.guarded(
                lambda: spark_state.stored_next(
                    ev.spark, ev.result, plan, ev.key_type, past.stored, at
                )
            )
        _finish(ctx, result, staged, stored)
    except BaseException:
        if not _committed(ctx.state, run_id):  # what Spark staged goes (out/ stays as it was)
            storage.rmtree(stage)
        raise
    finally:
        ev.release()
    result.total_seconds = time.perf_counter() - ctx.t0
    return result


# Contact rows per batch of segment transitions: a run's small segments go together (one
# frame for dozens of segments costs about what one segment does), while from about 125k
# contacts on each segment goes alone: its joins are then on the key only, which costs
# less than the per-call overhead saved (1M contacts, 24 segments: 1.8 s a night alone
# against 2.3 s in pairs, docs/performance.md), and memory stays near one segment's.
BATCH_ROWS = 250_000


def _batches(names: list[str], contacts: int) -> list[list[str]]:
    """`names` in order, cut into batches of at most BATCH_ROWS contact rows (at least one
    segment each)."""
    size = max(1, BATCH_ROWS // max(contacts, 1))
    return [names[i : i + size] for i in range(0, len(names), size)]


@dataclass
class _Run:
    """What every engine's path through `run` shares: where it writes and how."""

    project: Project
    state: StateDir
    manifest: Manifest
    out: Loc
    at: datetime
    fmt: str
    dry_run: bool
    keep_runs: int | None
    say: Any
    actions: bool
    refresh: set[str]  # the segments --refresh recomputes
    notes: list[str]  # said before the engine ran (a taken-over lock, changed definitions)
    t0: float  # when the run started (perf_counter)


@dataclass
class _Staged:
    """A run's results before its commit: the outputs and snapshots to write, and the
    changes its deliveries are made of."""

    changes: dict[str, pl.DataFrame] = field(default_factory=dict)
    writes: list[tuple[pl.DataFrame | EngineFrame, Loc]] = field(default_factory=list)
    snapshots: dict[str, pl.DataFrame | EngineFrame] = field(default_factory=dict)


def prepare_out(out: Loc, manifest: Manifest) -> None:
    """Before a run writes: refuse an output directory holding foreign files, finish moving
    the last committed run's outputs into place if it was killed before it could, and remove
    what runs that never committed left behind."""
    claim_out(out, create=False)
    if manifest.runs:
        publish_pending(manifest.runs[-1])
    discard_stages(out)
    remove_stray_temps(out)


def _write_and_commit(
    project: Project,
    result: RunResult,
    fmt: str,
    writes: list[tuple[pl.DataFrame | EngineFrame, Loc]],
    manifest: Manifest,
    state: StateDir,
    snapshots: dict[str, pl.DataFrame | EngineFrame],
    keep_runs: int | None,
    say: Any,
    fields: Mapping[str, tuple[pl.DataFrame | EngineFrame, str]] | None = None,
) -> None:
    """Write the outputs into the run's staging folder, commit the state (snapshots, then
    the manifest), then move the outputs into place. Until the commit, a failure removes the
    staging folder, so out/ stays exactly as the last committed run left it."""
    assert result.out_dir is not None
    out, spec = result.out_dir, project.spec
    stage = stage_dir(out, result.run_id)
    try:
        claim_out(out)
        staged = write_frames(writes, fmt)
        result.files = [out / storage.relative(f, stage) for f in staged] + [out / "run.json"]
        where = output_record(out, fmt, result.files)
        write_json(stage / "run.json", {**run_manifest(project, result), **where})
        fsync_dir(stage)  # its name too is durable before the commit (the frames' already are)
        record = {
            "run_id": result.run_id,
            "as_of": result.as_of.isoformat(),
            "committed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "spec_fingerprint": project.fingerprint,
            **where,
            "segments": {
                s.name: s.summary(fingerprint=fp)
                for s, fp in zip(
                    result.segments,
                    fingerprints(project, [s.name for s in result.segments]).values(),
                    strict=True,
                )
            },
            "deliveries": [d.record() for d in result.deliveries],
        }
        hold = handoff.held_runs(state.path, manifest.runs)
        say("committing state")
        with interrupts_deferred():  # the commit and the move into place are not cut in half
            try:
                state.commit(manifest, record, snapshots, keep_runs or spec.keep_runs, hold, fields)
            except BaseException:
                storage.rmtree(stage)
                raise
            publish(out, result.run_id, where["files"])
    except BaseException:
        if not _committed(state, result.run_id):
            storage.rmtree(stage)
        raise


def _committed(state: StateDir, run_id: str) -> bool:
    try:
        return any(r["run_id"] == run_id for r in state.read_manifest().runs)
    except StateError:
        return False


def output_record(out: Loc, fmt: str, files: list[Loc]) -> dict[str, Any]:
    """Where a run's outputs are, as its manifest record and run.json keep it: `out_dir`
    (absolute, or a URI), `format`, and `files` (the files it wrote, relative to out_dir,
    sorted)."""
    rel = sorted(storage.relative(f, out) for f in files)
    return {"out_dir": str(out.resolve()), "format": fmt, "files": rel}


def scores_frame(project: Project, ev: Evaluation) -> pl.DataFrame:
    """key, then for each model M: M (score), M_pct (readiness percent) and, for a model with
    grades, M_grade."""
    key = project.spec.contacts.key
    cols: dict[str, pl.Series] = {key: ev.contact_keys()}
    for name, sm in project.spec.scoring.items():
        s = ev.score(name)
        cols[name] = s.alias(name)
        cols[f"{name}_pct"] = (s / sm.sales_ready * 100).alias(f"{name}_pct")
        if sm.grades:
            cols[f"{name}_grade"] = ev.grade(sm).alias(f"{name}_grade")
    return pl.DataFrame(cols)


def run_manifest(project: Project, result: RunResult) -> dict[str, Any]:
    """The content of run.json (SPEC §4)."""
    inputs: list[dict[str, Any]] = []
    for name in project.spec.sources:
        src = project.spec.sources[name]
        if src.remote is not None:
            inputs.append({"source": name, "table" if src.table else "uri": src.remote})
            continue
        for f in project.catalog.files(name):
            st = f.stat()
            inputs.append(
                {
                    "source": name,
                    "path": str(f),
                    "size": st.st_size,
                    "mtime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
                }
            )
    return {
        "run_id": result.run_id,
        "as_of": result.as_of.isoformat(),
        "segcli_version": __version__,
        "spec_fingerprint": project.fingerprint,
        "engine": result.engine,
        "inputs": inputs,
        "plan_seconds": round(result.plan_seconds, 3),
        "segments": {s.name: s.summary(seconds=round(s.seconds, 4)) for s in result.segments},
    }


def deliver(
    project: Project,
    state_dir: str | Path | None = None,
    segments: list[str] | None = None,
    list_only: bool = False,
) -> handoff.Report:
    """Retry the pending deliveries of the committed runs (of `segments` only, when given),
    holding the state lock; with `list_only`, only say what is pending and why."""
    check_segment_names(project, segments)
    state = project.state(state_dir)
    if list_only:
        runs = state.read_manifest().runs
        return handoff.Report([], handoff.pending(state.path, runs, segments))
    lock = None
    try:
        with interrupts_deferred():
            lock = state.lock()
        manifest = state.read_manifest()
        outbox.clean(state.path, manifest.runs)
        return handoff.deliver(state.path, manifest.runs, project.spec.contacts.key, segments)
    finally:
        if lock is not None:
            with interrupts_deferred():
                lock.release()
