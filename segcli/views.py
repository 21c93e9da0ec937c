"""Read-side commands (show, explain, sample) as library calls that return data to render."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from segcli import api
from segcli import explain as ex
from segcli.errors import DataError, UsageError


@dataclass
class Shown:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    total: int
    text: str = ""


def show(
    project: api.Project,
    name: str,
    *,
    out_dir: Path | None = None,
    limit: int = 20,
    columns: list[str] | None = None,
    fmt: str = "table",
) -> Shown:
    """A segment's members from the last run's output, joined with contact columns."""
    api.check_segment_names(project, [name])
    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"unknown format {fmt!r}: use table, csv or json")
    spec = project.spec
    out = Path(out_dir) if out_dir else Path(spec.base_dir) / "out"
    path = out / "segments" / f"{name}.parquet"
    if not path.exists():
        path = path.with_suffix(".csv")
    if not path.exists():
        raise DataError(f"no output for segment '{name}' in {out}: run `segcli run` first")
    members = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    key = spec.contacts.key
    contacts = project.catalog.frame("contacts").collect()
    members = members.with_columns(pl.col(key).cast(contacts[key].dtype))
    if columns:
        missing = [c for c in columns if c not in contacts.columns]
        if missing:
            raise UsageError(
                f"unknown column(s) {', '.join(missing)}; contacts has: "
                f"{', '.join(contacts.columns)}"
            )
        contacts = contacts.select([key, *[c for c in columns if c != key]])
    df = members.join(contacts, on=key, how="left").sort(key)
    total = df.height
    df = df.head(limit)
    text = ""
    if fmt == "csv":
        text = df.write_csv()
    elif fmt == "json":
        buf = io.StringIO()
        df.write_json(buf)
        text = buf.getvalue() + "\n"
    return Shown(df.columns, [tuple(r) for r in df.iter_rows()], total, text)


def explain(
    project: api.Project,
    *,
    name: str | None = None,
    contact: str | None = None,
    as_of: str | None = None,
) -> list[str]:
    """Lines of text explaining a segment (words + plan) or a contact (verdicts)."""
    spec = project.spec
    if name is not None:
        api.check_segment_names(project, [name])
        ev, at = api.compute(project, as_of, [name])
        lines = ex.describe_segment(spec, name)
        lines.append("")
        lines.append(f"plan (as of {at.isoformat()}):")
        lines += ["  " + ln for ln in ev.planner.describe()]
        deps = ev.segments
        lines.append(f"  then segments in order: {', '.join(deps)}")
        lines.append("  all collected in one query")
        return lines
    assert contact is not None
    ev, at = api.compute(project, as_of)
    key = spec.contacts.key
    dtype = ev.frame[key].dtype
    try:
        value = pl.Series([contact]).cast(dtype, strict=True)[0]
    except pl.exceptions.PolarsError as exc:
        raise UsageError(f"contact key {contact!r} is not a valid {dtype}") from exc
    lines = [f"contact {key}={contact} as of {at.isoformat()}"]
    lines += ex.contact_verdict(ev.frame, key, value, ev.segments)
    return lines


def sample(out: Path, **kwargs: Any) -> dict[str, Any]:
    """Generate synthetic exports (see segcli.sample.generate)."""
    from segcli import sample as gen

    fmt = kwargs.pop("fmt", "parquet")
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"unknown format {fmt!r}: use csv or parquet")
    return dict(gen.generate(Path(out), fmt=fmt, **kwargs))
