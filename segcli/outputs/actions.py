"""Deliver the outbox (SPEC §2.9): export files, commands and webhook batches.

Called after the commit, holding the state lock. Each batch is sent, then marked done; a batch
already marked is skipped, so a retry sends only what is missing (at least once, never again
after success). A failed batch stops its delivery (the rest stays pending) and the next
delivery is tried.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from segcli.fs import atomic_path
from segcli.outputs.webhook import DeliveryError, post, signature
from segcli.spec.actions import export_format
from segcli.state import outbox
from segcli.state.outbox import REASON, Delivery
from segcli.storage import Loc, sink

SLACK_SHOWN = 10


@dataclass
class Outcome:
    """What one delivery attempt did: batches sent now, and the error that stopped it."""

    delivery: Delivery
    sent: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def deliver_all(state: Loc, deliveries: list[Delivery], key: str) -> list[Outcome]:
    """Send every batch of `deliveries` not yet marked done, in order."""
    return [deliver_one(state, d, key) for d in deliveries]


def deliver_one(state: Loc, d: Delivery, key: str) -> Outcome:
    """Send the missing batches of one delivery, marking each done after its success."""
    done = outbox.done(state, d)
    sent = 0
    try:
        frame = outbox.read_payload(state, d)
        for batch in range(1, d.batches + 1):
            if batch in done:
                continue
            send(d, batch, frame, key)
            outbox.mark_done(state, d, batch)
            sent += 1
    except (DeliveryError, OSError, pl.exceptions.PolarsError) as exc:
        error = str(exc) or type(exc).__name__
        outbox.record_failure(state, d, error)
        return Outcome(d, sent, error)
    return Outcome(d, sent)


def send(d: Delivery, batch: int, frame: pl.DataFrame, key: str) -> None:
    """Send batch `batch` (1-based) of a delivery; DeliveryError when it fails."""
    if d.kind == "export":
        write_export(Path(d.action["path"]), selected(frame, d, key, with_reason=False))
    elif d.kind == "command":
        run_command(d, jsonl(selected(frame, d, key)))
    else:
        send_webhook(d, batch, selected(frame, d, key))


def selected(frame: pl.DataFrame, d: Delivery, key: str, with_reason: bool = True) -> pl.DataFrame:
    """The key, then the action's columns (all the payload's when it lists none), then
    `reason` (unless a contacts column is called that)."""
    cols = d.action["columns"]
    if cols is None:
        cols = [c for c in frame.columns if c not in (key, REASON)]
    cols = [c for c in cols if c != key]  # the key always comes first, once
    out = frame.select(key, *cols)
    if with_reason and "reason" not in cols:
        out = out.with_columns(frame[REASON].alias("reason"))
    return out


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates as YYYY-MM-DD, datetimes as ISO 8601 (UTC with +00:00 when zoned), for CSV and
    JSON: what Mailchimp, HubSpot and Mautic import."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
            else:
                col = col.dt.strftime("%Y-%m-%dT%H:%M:%S")
        elif dtype == pl.Date:
            col = col.dt.strftime("%Y-%m-%d")
        exprs.append(col.alias(name))
    return frame.select(exprs)


def write_export(path: Path, frame: pl.DataFrame) -> None:
    """Write an export file atomically; the format follows the extension."""
    fmt = export_format(str(path))
    with atomic_path(path) as tmp:
        if fmt == "jsonl":
            tmp.write_bytes(jsonl(frame))
            return
        with sink(tmp) as into:
            if fmt == "parquet":
                frame.write_parquet(into)
            else:
                as_text(frame).write_csv(into)


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return as_text(frame).to_dicts()


def jsonl(frame: pl.DataFrame) -> bytes:
    """Contacts as JSON Lines (one object per contact), UTF-8."""
    return "".join(
        json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows(frame)
    ).encode()


def run_command(d: Delivery, stdin: bytes) -> None:
    """Run the command (no shell) with the contacts on stdin; exit 0 is success."""
    a = d.action
    env = {
        **os.environ,
        "SEGCLI_SEGMENT": d.segment,
        "SEGCLI_CHANGE": d.change,
        "SEGCLI_RUN_ID": d.run_id,
        "SEGCLI_AS_OF": d.as_of,
    }
    argv = list(a["argv"])
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            env=env,
            cwd=a["cwd"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=a["timeout"],
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DeliveryError(f"command {argv[0]} timed out after {a['timeout']:g} s") from None
    except OSError as exc:
        raise DeliveryError(f"command {argv[0]} could not start: {exc.strerror or exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        said = f": {tail[0][:200]}" if tail[0] else ""
        raise DeliveryError(f"command {argv[0]} exited {done.returncode}{said}")


def send_webhook(d: Delivery, batch: int, frame: pl.DataFrame) -> None:
    a = d.action
    body: dict[str, Any]
    if a["template"] == "slack":
        body = {"text": slack_text(d, frame)}
    else:
        size = int(a["batch"])
        part = frame.slice((batch - 1) * size, size)
        body = {
            "segment": d.segment,
            "change": d.change,
            "run_id": d.run_id,
            "as_of": d.as_of,
            "batch": batch,
            "batches": d.batches,
            "contacts": rows(part),
        }
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    headers = {"Idempotency-Key": d.key(batch)}
    if a["secret_env"]:
        secret = os.environ.get(a["secret_env"])
        if not secret:
            raise DeliveryError(f"environment variable {a['secret_env']} (secret_env) is not set")
        headers["X-Segcli-Signature"] = signature(secret, data)
    post(a["url"], data, headers, float(a["timeout"]))


def slack_text(d: Delivery, frame: pl.DataFrame) -> str:
    """A one-line summary, then the first contacts (key and up to three columns)."""
    n = frame.height
    head = (
        f"segcli: {n:,} contact{'s' if n != 1 else ''} {d.change} segment *{d.segment}* "
        f"(run {d.run_id}, as of {d.as_of})"
    )
    shown = as_text(frame.head(SLACK_SHOWN).select(frame.columns[:4]))
    lines = [
        "• " + " · ".join("" if v is None else str(v) for v in row.values())
        for row in shown.to_dicts()
    ]
    more = [f"… and {n - SLACK_SHOWN:,} more"] if n > SLACK_SHOWN else []
    return "\n".join([head, *lines, *more])
