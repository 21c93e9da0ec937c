"""The outbox: a run's deliveries (SPEC §2.9), recorded in the state with the run.

Layout under the state directory:

    outbox/<run_id>/<segment>.<change>.parquet   the changed contacts, frozen at commit
    outbox/<run_id>/done/<delivery>.<batch>      a batch delivered; written only after success
    outbox/<run_id>/status/<delivery>.json       the last failed attempt: when and why

The run's manifest record lists its deliveries (`deliveries`), so they are committed with the
run: the folder is written under a temporary name and renamed into place before the manifest
is replaced. A folder whose run the manifest does not name was left by a killed run (or its
run was pruned once everything was delivered) and is removed by `clean`. Deliveries run under
the state lock, one process at a time, so a batch with a `done` marker is never sent again.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from segcli import storage
from segcli.errors import StateError
from segcli.fs import atomic_write_bytes, fsync_all, fsync_dir
from segcli.spec import model as m
from segcli.storage import Loc

_RUN_FOLDER = re.compile(r"(\.tmp-)?[0-9a-f]{12}")
REASON = "__segcli_reason"  # the change's reason, beside the contacts columns in a payload


@dataclass(frozen=True)
class Delivery:
    """One action of one segment's change set in one run (`batches` batches of contacts)."""

    run_id: str
    as_of: str
    id: str  # <segment>.<change>.<index of the action in on_enter/on_leave>
    segment: str
    change: str
    kind: str  # export | command | webhook
    action: dict[str, Any]  # the action's parameters as committed (paths resolved)
    contacts: int
    batches: int
    # The webhook's place among the webhooks of the same segment and change (0 for the
    # first): a second webhook's Idempotency-Keys get `#2`, so keys stay unique per batch.
    nth: int = 0

    @property
    def payload(self) -> str:
        return f"{self.segment}.{self.change}.parquet"

    def key(self, batch: int) -> str:
        """The batch's Idempotency-Key: the same on every retry, unique per batch."""
        suffix = f"#{self.nth + 1}" if self.nth else ""
        return f"{self.run_id}:{self.segment}:{self.change}:{batch}{suffix}"

    @property
    def target(self) -> str:
        """Where it goes, for people (a webhook's path is elided: it is often the secret)."""
        a = self.action
        if self.kind == "export":
            return str(a["path"])
        if self.kind == "command":
            return " ".join(a["argv"])
        scheme, _, rest = str(a["url"]).partition("://")
        host = rest.split("/", 1)[0]
        return f"{scheme}://{host}/…" if "/" in rest.strip("/") else f"{scheme}://{host}"

    def record(self) -> dict[str, Any]:
        """The delivery as the run's manifest record keeps it."""
        out = asdict(self)
        del out["run_id"], out["as_of"]
        return out


def batch_count(action: m.Action, contacts: int) -> int:
    """How many batches an action sends: webhooks `batch` contacts each (a Slack message is
    one summary), exports and commands one."""
    if isinstance(action, m.WebhookAction) and action.template == "json":
        return max(1, -(-contacts // action.batch))
    return 1


def action_params(action: m.Action, fill: dict[str, str], base_dir: Path) -> dict[str, Any]:
    """An action's parameters as committed: export paths filled in and made absolute."""
    if isinstance(action, m.ExportAction):
        path = Path(action.path.format(**fill))
        path = path if path.is_absolute() else base_dir / path
        return {"path": str(path), "columns": _cols(action.columns)}
    if isinstance(action, m.CommandAction):
        return {
            "argv": list(action.argv),
            "timeout": action.timeout,
            "cwd": str(base_dir),
            "columns": _cols(action.columns),
        }
    return {
        "url": action.url,
        "batch": action.batch,
        "secret_env": action.secret_env,
        "template": action.template,
        "timeout": action.timeout,
        "columns": _cols(action.columns),
    }


def _cols(columns: tuple[str, ...] | None) -> list[str] | None:
    return list(columns) if columns is not None else None


def plan(
    run_id: str, as_of: str, date: str, spec: m.Spec, changes: dict[str, pl.DataFrame]
) -> list[Delivery]:
    """The deliveries a run owes: one per action of each segment whose change set (entered or
    left) is not empty. `changes` are the run's change frames (key, change, reason, at)."""
    out = []
    base = Path(spec.base_dir)
    for name, frame in changes.items():
        seg = spec.segments[name]
        for change, actions in (("entered", seg.on_enter), ("left", seg.on_leave)):
            n = int((frame["change"] == change).sum()) if actions else 0
            if n == 0:
                continue
            fill = {"segment": name, "change": change, "run_id": run_id, "date": date}
            hooks = 0
            for i, action in enumerate(actions):
                kind = type(action).__name__.removesuffix("Action").lower()
                nth, hooks = (hooks, hooks + 1) if kind == "webhook" else (0, hooks)
                params = action_params(action, fill, base)
                out.append(
                    Delivery(
                        run_id,
                        as_of,
                        f"{name}.{change}.{i}",
                        name,
                        change,
                        kind,
                        params,
                        n,
                        batch_count(action, n),
                        nth,
                    )
                )
    return out


def needed_columns(spec: m.Spec, deliveries: list[Delivery]) -> set[str] | None:
    """The contacts columns the deliveries send (None: all of them)."""
    cols: set[str] = set()
    for d in deliveries:
        if d.action["columns"] is None:
            return None
        cols.update(d.action["columns"])
    return cols


def payloads(
    deliveries: list[Delivery],
    changes: dict[str, pl.DataFrame],
    contacts: pl.DataFrame,
    key: str,
) -> dict[str, pl.DataFrame]:
    """Each (segment, change) payload: the changed keys with their reason and contact columns
    (null for contacts deleted from the export), sorted by key."""
    out: dict[str, pl.DataFrame] = {}
    for d in deliveries:
        if d.payload in out:
            continue
        frame = changes[d.segment].filter(pl.col("change") == d.change)
        keys = frame.select(key, pl.col("reason").alias(REASON))
        out[d.payload] = keys.join(contacts, on=key, how="left").sort(key)
    return out


def folder(state: Loc, run_id: str) -> Loc:
    return state / "outbox" / run_id


def write_payloads(state: Loc, run_id: str, frames: dict[str, pl.DataFrame]) -> None:
    """Write a run's payloads into outbox/<run_id>, atomically as a folder (before the commit)."""
    root = state / "outbox"
    tmp = storage.staging(root, run_id)
    storage.rmtree(tmp)
    tmp.mkdir(parents=True)
    written = []
    for name, frame in frames.items():
        written.append(tmp / name)
        with storage.sink(written[-1]) as into:
            frame.write_parquet(into)
    fsync_all(written, [tmp])  # durable before the folder is renamed and the commit names it
    if tmp != root / run_id:
        storage.replace(tmp, root / run_id)
    fsync_dir(root)


def read_payload(state: Loc, d: Delivery) -> pl.DataFrame:
    """The contacts a delivery sends (key, reason, contact columns)."""
    with storage.source(folder(state, d.run_id) / d.payload) as at:
        return pl.read_parquet(at)


def deliveries(runs: list[dict[str, Any]]) -> list[Delivery]:
    """Every delivery recorded in the given manifest run records, oldest run first."""
    out = []
    for r in runs:
        for rec in r.get("deliveries", []):
            try:
                d = Delivery(run_id=r["run_id"], as_of=r["as_of"], **rec)
            except TypeError as exc:
                raise StateError(
                    f"state manifest: run {r['run_id']} has a malformed delivery ({exc}); "
                    "restore the state from a backup"
                ) from exc
            out.append(d)
    return out


def done(state: Loc, d: Delivery) -> set[int]:
    """The batches of `d` recorded as delivered."""
    where = folder(state, d.run_id) / "done"
    prefix = f"{d.id}."
    if not where.is_dir():
        return set()
    return {
        int(p.name[len(prefix) :])
        for p in where.iterdir()
        if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit()
    }


def mark_done(state: Loc, d: Delivery, batch: int) -> None:
    """Record batch `batch` of `d` as delivered (durably, before anything else is sent)."""
    body = {"done_at": datetime.now(UTC).timestamp(), "key": d.key(batch)}
    atomic_write_bytes(
        folder(state, d.run_id) / "done" / f"{d.id}.{batch}", json.dumps(body).encode()
    )
    fsync_dir(folder(state, d.run_id) / "done")
    (folder(state, d.run_id) / "status" / f"{d.id}.json").unlink(missing_ok=True)


def record_failure(state: Loc, d: Delivery, error: str) -> None:
    """Keep why the last attempt of `d` failed (shown by `deliver --list`)."""
    prev = last_failure(state, d) or {}
    body = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "error": error,
        "failures": int(prev.get("failures", 0)) + 1,
    }
    atomic_write_bytes(
        folder(state, d.run_id) / "status" / f"{d.id}.json", json.dumps(body).encode()
    )


def last_failure(state: Loc, d: Delivery) -> dict[str, Any] | None:
    """The last failed attempt of `d` ({at, error, failures}) or None."""
    p = folder(state, d.run_id) / "status" / f"{d.id}.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pending(state: Loc, runs: list[dict[str, Any]]) -> list[Delivery]:
    """Deliveries of the given runs with a batch not yet delivered, oldest first."""
    return [d for d in deliveries(runs) if len(done(state, d)) < d.batches]


def status(state: Loc, run: dict[str, Any], segment: str | None = None) -> dict[str, int]:
    """A run's deliveries (of one segment, when given) by state, for history and report:
    `done` (every batch delivered), `failed` (not done, and its last attempt failed) and
    `pending` (not done and not failed: not attempted yet, e.g. after `--no-actions` or a
    run killed before delivering). All zero when the run has none."""
    out = status_empty()
    for d in deliveries([run]):
        if segment is not None and d.segment != segment:
            continue
        if len(done(state, d)) >= d.batches:
            out["done"] += 1
        elif last_failure(state, d) is not None:
            out["failed"] += 1
        else:
            out["pending"] += 1
    return out


def status_empty() -> dict[str, int]:
    """The status of a run without deliveries."""
    return {"done": 0, "pending": 0, "failed": 0}


def clean(state: Loc, runs: list[dict[str, Any]]) -> None:
    """Remove outbox folders of runs the manifest does not name (killed before their commit,
    or pruned after everything was delivered). Call while holding the lock."""
    root = state / "outbox"
    if not root.is_dir():
        return
    known = {r["run_id"] for r in runs}
    for child in root.iterdir():
        if child.name not in known and _RUN_FOLDER.fullmatch(child.name) and child.is_dir():
            storage.rmtree(child)
