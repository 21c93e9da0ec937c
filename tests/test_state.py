"""State across runs (SPEC §2.3 kinds, §3 running/time/state, §4 outputs).

Every test here drives real runs through the library facade (`api.run`) or the CLI
(`typer.testing.CliRunner`, or a real `segcli` subprocess where processes matter) and reads
back the files a user would read: `out/segments/*`, `out/changes/*`, `out/run.json` and the
state directory. The kill loop lives in test_kill.py.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from segcli import __version__, api
from segcli.cli import app
from segcli.errors import StateError
from segcli.state.store import acquire_lock
from segcli.views import commands as views

SEGCLI = Path(sys.executable).with_name("segcli")
FIXTURES = Path(__file__).parent / "state_fixtures"
ENV = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}

Row = dict[str, Any]

SPEC = """\
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.csv, key: contact_id}
  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}
segments:
  vp_dyn: {where: {field: title, starts_with: VP}}
  vp_semi: {kind: semi_dynamic, where: {field: title, starts_with: VP}}
  vp_static: {kind: static, where: {field: title, starts_with: VP}, include_file: lists/vip.csv}
  clickers:
    where: {event: {source: email, type: click, within: 30d, count: {gte: 2}}}
  clickers_semi:
    kind: semi_dynamic
    where: {event: {source: email, type: click, within: 30d, count: {gte: 2}}}
"""

CONTACT_COLS = ["contact_id", "title", "country"]
EVENT_COLS = ["contact_id", "occurred_at", "event_type"]


# ------------------------------------------------------------------ helpers


def write_csv(path: Path, cols: list[str], rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(cols)]
    lines += [",".join("" if r.get(c) is None else str(r[c]) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def contact(cid: int, title: str = "Analyst", country: str = "US") -> Row:
    return {"contact_id": cid, "title": title, "country": country}


def click(cid: int, at: str, kind: str = "click") -> Row:
    return {"contact_id": cid, "occurred_at": at, "event_type": kind}


def write_export(
    root: Path,
    contacts: list[Row],
    events: list[Row] | None = None,
    lists: dict[str, list[int]] | None = None,
) -> None:
    write_csv(root / "contacts.csv", CONTACT_COLS, contacts)
    if events is not None:
        write_csv(root / "email.csv", EVENT_COLS, events)
    for name, keys in (lists or {}).items():
        write_csv(root / "lists" / f"{name}.csv", ["contact_id"], [{"contact_id": k} for k in keys])


def make_project(root: Path, spec: str = SPEC) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "segments.yaml"
    cfg.write_text(spec, encoding="utf-8")
    return cfg


def run(cfg: Path, as_of: str, **kw: Any) -> api.RunResult:
    """One run through the library, loading the spec afresh (as cron would)."""
    return api.run(api.load(cfg), as_of=as_of, **kw)


def read_table(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":
        return pl.read_csv(path, try_parse_dates=True)
    return pl.read_parquet(path)


def members(out: Path, name: str, ext: str = "parquet") -> dict[int, tuple[date, str]]:
    """Segment file -> {key: (joined_at date, source)}; asserts sorted by key and UTC."""
    df = read_table(out / "segments" / f"{name}.{ext}")
    assert df.columns == ["contact_id", "joined_at", "source"]
    assert df["contact_id"].to_list() == sorted(df["contact_id"].to_list())
    assert df.schema["joined_at"] == pl.Datetime("us", "UTC")
    return {
        k: (j.date(), s)
        for k, j, s in zip(df["contact_id"], df["joined_at"], df["source"], strict=True)
    }


def changes(out: Path, name: str, ext: str = "parquet") -> set[tuple[int, str, str]]:
    """Changes file -> {(key, change, reason)}; asserts sorted by key and `at` = run's as_of."""
    df = read_table(out / "changes" / f"{name}.{ext}")
    assert df.columns == ["contact_id", "change", "reason", "at"]
    assert df["contact_id"].to_list() == sorted(df["contact_id"].to_list())
    run_json = json.loads((out / "run.json").read_text())
    if df.height:
        assert df.schema["at"] == pl.Datetime("us", "UTC")
        assert set(df["at"].to_list()) == {datetime.fromisoformat(run_json["as_of"])}
    return {(k, c, r) for k, c, r in df.select("contact_id", "change", "reason").iter_rows()}


def cli(*args: str) -> Any:
    return CliRunner(env=ENV).invoke(app, list(args))


def tree(root: Path, dir_mtimes: bool = True) -> dict[str, tuple[int, int, str]]:
    """Every file under root: relative path -> (size, mtime_ns, sha256); dirs map to marks."""
    out: dict[str, tuple[int, int, str]] = {}
    for p in sorted(root.rglob("*")):
        st_ = p.stat()
        rel = str(p.relative_to(root))
        if p.is_dir():
            out[rel + "/"] = (0, st_.st_mtime_ns if dir_mtimes else 0, "dir")
        else:
            out[rel] = (st_.st_size, st_.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


# ------------------------------------------------------------------ 1. three nightly runs


def test_three_nightly_runs_all_kinds(tmp_path: Path) -> None:
    cfg = make_project(tmp_path)
    out = tmp_path / "out"
    # Night 1: 1, 2 are VPs; 3 clicked twice lately; 4 once; 5 is a manual VIP of vp_static.
    write_export(
        tmp_path,
        [contact(1, "VP Sales"), contact(2, "VP Ops", "DE"), contact(3), contact(4, "Director"),
         contact(5, country="FR")],
        [click(3, "2026-02-20T10:00:00"), click(3, "2026-02-25T10:00:00"),
         click(4, "2026-01-31T12:00:00"), click(4, "2026-02-10T09:00:00", "open")],
        {"vip": [5]},
    )  # fmt: skip
    r1 = run(cfg, "2026-03-01")
    assert r1.warnings == []
    assert members(out, "vp_dyn") == {1: (D1, "rule"), 2: (D1, "rule")}
    assert members(out, "vp_semi") == {1: (D1, "rule"), 2: (D1, "rule")}
    assert members(out, "vp_static") == {1: (D1, "rule"), 2: (D1, "rule"), 5: (D1, "manual")}
    assert members(out, "clickers") == {3: (D1, "rule")}
    assert members(out, "clickers_semi") == {3: (D1, "rule")}
    # 5 is in by include_file only: a manual addition (SPEC §3.2).
    assert changes(out, "vp_static") == {
        (1, "entered", "matched"), (2, "entered", "matched"), (5, "entered", "manual")
    }  # fmt: skip
    assert changes(out, "clickers") == {(3, "entered", "matched")}

    # Night 2: 1 stops being a VP, 3 is deleted, 6 is a new VP, 4 clicks again.
    write_export(
        tmp_path,
        [contact(1, "Director"), contact(2, "VP Ops", "DE"), contact(4, "Director"),
         contact(5, country="FR"), contact(6, "VP Finance")],
        [click(3, "2026-02-20T10:00:00"), click(3, "2026-02-25T10:00:00"),
         click(4, "2026-01-31T12:00:00"), click(4, "2026-02-10T09:00:00", "open"),
         click(4, "2026-03-01T12:00:00")],
    )  # fmt: skip
    r2 = run(cfg, "2026-03-02")
    assert members(out, "vp_dyn") == {2: (D1, "rule"), 6: (D2, "rule")}
    assert changes(out, "vp_dyn") == {(1, "left", "unmatched"), (6, "entered", "matched")}
    assert members(out, "vp_semi") == {1: (D1, "kept"), 2: (D1, "rule"), 6: (D2, "rule")}
    assert changes(out, "vp_semi") == {(6, "entered", "matched")}
    assert members(out, "vp_static") == {1: (D1, "kept"), 2: (D1, "rule"), 5: (D1, "manual")}
    assert changes(out, "vp_static") == set()
    assert members(out, "clickers") == {4: (D2, "rule")}
    assert changes(out, "clickers") == {(3, "left", "deleted"), (4, "entered", "matched")}
    assert members(out, "clickers_semi") == {4: (D2, "rule")}
    assert changes(out, "clickers_semi") == {(3, "left", "deleted"), (4, "entered", "matched")}

    # Night 3 (CSV outputs): 1 is a VP again, 2 is deleted, 6 no longer a VP, 7 a new VP;
    # 4's first click falls out of the 30-day window; 5 clicks twice; 6's clicks are
    # after as_of (invisible).
    write_export(
        tmp_path,
        [contact(1, "VP Sales"), contact(4, "Director"), contact(5, country="FR"),
         contact(6, "Analyst"), contact(7, "VP Eng")],
        [click(4, "2026-01-31T12:00:00"), click(4, "2026-03-01T12:00:00"),
         click(5, "2026-03-02T10:00:00"), click(5, "2026-03-02T11:00:00"),
         click(6, "2026-03-05T10:00:00"), click(6, "2026-03-05T11:00:00")],
    )  # fmt: skip
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-03", "--format", "csv", "--json")
    assert res.exit_code == 0, res.output
    r3 = json.loads(res.stdout)
    c = "csv"
    assert members(out, "vp_dyn", c) == {1: (D3, "rule"), 7: (D3, "rule")}
    assert changes(out, "vp_dyn", c) == {
        (1, "entered", "matched"), (2, "left", "deleted"), (6, "left", "unmatched"),
        (7, "entered", "matched"),
    }  # fmt: skip
    # joined_at of a semi_dynamic member never changes (1 joined on night 1).
    assert members(out, "vp_semi", c) == {1: (D1, "rule"), 6: (D2, "kept"), 7: (D3, "rule")}
    assert changes(out, "vp_semi", c) == {(2, "left", "deleted"), (7, "entered", "matched")}
    assert members(out, "vp_static", c) == {1: (D1, "rule"), 5: (D1, "manual")}
    assert changes(out, "vp_static", c) == {(2, "left", "deleted")}
    assert members(out, "clickers", c) == {5: (D3, "rule")}
    assert changes(out, "clickers", c) == {(4, "left", "unmatched"), (5, "entered", "matched")}
    assert members(out, "clickers_semi", c) == {4: (D2, "kept"), 5: (D3, "rule")}
    assert changes(out, "clickers_semi", c) == {(5, "entered", "matched")}

    # run.json (SPEC §4) describes the last run.
    body = json.loads((out / "run.json").read_text())
    assert body["run_id"] == r3["run_id"] and body["run_id"] not in (r1.run_id, r2.run_id)
    assert datetime.fromisoformat(body["as_of"]) == datetime(2026, 3, 3, tzinfo=UTC)
    assert body["segcli_version"] == __version__
    assert body["spec_fingerprint"] == api.load(cfg).fingerprint
    paths = {Path(i["path"]).name: i for i in body["inputs"]}
    assert set(paths) == {"contacts.csv", "email.csv"}
    assert paths["contacts.csv"]["size"] == (tmp_path / "contacts.csv").stat().st_size
    assert datetime.fromisoformat(paths["contacts.csv"]["mtime"]).tzinfo is not None
    assert body["segments"]["vp_semi"] | {"seconds": 0} == {
        "kind": "semi_dynamic", "size": 3, "entered": 1, "left": 1, "seconds": 0
    }  # fmt: skip
    assert body["segments"]["vp_dyn"]["entered"] == 2 and body["segments"]["vp_dyn"]["left"] == 2
    assert body["segments"]["vp_static"]["kind"] == "static"
    assert all(s["seconds"] >= 0 for s in body["segments"].values())

    # history and diff read the same story back from the state.
    hist = json.loads(cli("history", "vp_semi", "-c", str(cfg), "--json").stdout)
    assert [(h["size"], h["entered"], h["left"]) for h in hist] == [(2, 2, 0), (3, 1, 0), (3, 1, 1)]
    d = json.loads(cli("diff", "vp_dyn", "-c", str(cfg), "--json").stdout)
    assert (d["entered"], d["left"]) == ([1, 7], [2, 6])
    d = json.loads(cli("diff", "vp_semi", "-c", str(cfg), "--from", r1.run_id, "--json").stdout)
    assert (d["entered"], d["left"]) == ([6, 7], [2])


# ------------------------------------------------------------------ 2. hypothesis


HYPO_SPEC = """\
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.csv, key: contact_id}
  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}
segments:
  dyn:
    where: {any: [{field: v, gte: 5}, {event: {source: email, within: 3d, count: {gte: 2}}}]}
    include_file: lists/inc.csv
    exclude_file: lists/exc.csv
  semi:
    kind: semi_dynamic
    where: {any: [{field: v, gte: 5}, {event: {source: email, within: 3d, count: {gte: 2}}}]}
  stat:
    kind: static
    where: {any: [{field: v, gte: 5}, {event: {source: email, within: 3d, count: {gte: 2}}}]}
    include_file: lists/inc.csv
"""
HYPO_DAY0 = datetime(2026, 5, 1, tzinfo=UTC)

# One step: contacts present (id -> v), event days per contact added this step, the
# include/exclude lists, and how many days as_of moves on (0 = same instant again).
step_st = st.fixed_dictionaries(
    {
        "contacts": st.dictionaries(st.integers(1, 30), st.integers(0, 9), min_size=1, max_size=30),
        "events": st.lists(st.tuples(st.integers(1, 32), st.integers(0, 4)), max_size=12),
        "inc": st.sets(st.integers(1, 32), max_size=4),
        "exc": st.sets(st.integers(1, 32), max_size=4),
        "advance": st.integers(0, 3),
    }
)


class Model:
    """A plain-Python model of the three kinds, overrides, joined_at and source."""

    def __init__(self) -> None:
        self.base: dict[str, set[int] | None] = {"dyn": None, "semi": None, "stat": None}
        self.members: dict[str, dict[int, tuple[datetime, str]]] = {
            n: {} for n in ("dyn", "semi", "stat")
        }

    def step(
        self,
        present: dict[int, int],
        events: list[tuple[int, datetime]],
        inc: set[int],
        exc: set[int],
        at: datetime,
    ) -> dict[str, set[tuple[int, str, str]]]:
        keys = set(present)
        recent = [k for k, t in events if at - timedelta(days=3) <= t <= at]
        matches = {k for k in keys if present[k] >= 5 or recent.count(k) >= 2}
        out: dict[str, set[tuple[int, str, str]]] = {}
        for name in ("dyn", "semi", "stat"):
            prev_base = self.base[name]
            if name == "dyn" or prev_base is None:
                base = set(matches)
            elif name == "semi":
                base = (prev_base & keys) | matches
            else:
                base = prev_base & keys
            self.base[name] = base
            now = set(base)
            if name != "semi":
                now |= inc & keys
            if name == "dyn":
                now -= exc
            before = self.members[name]
            new: dict[int, tuple[datetime, str]] = {}
            for k in now:
                src = "rule" if k in base and k in matches else "kept" if k in base else "manual"
                new[k] = (before[k][0] if k in before else at, src)
            self.members[name] = new
            # Manual changes are named (SPEC §3.2): in by include_file only; out by
            # exclude_file (still in the rule-made base); out when an include line was all.
            out[name] = {
                (k, "entered", "manual" if new[k][1] == "manual" else "matched")
                for k in set(new) - set(before)
            } | {
                (k, "left", self.left_reason(k, keys, base, before)) for k in set(before) - set(new)
            }
        return out

    @staticmethod
    def left_reason(
        k: int, keys: set[int], base: set[int], before: dict[int, tuple[datetime, str]]
    ) -> str:
        if k not in keys:
            return "deleted"
        return "manual" if k in base or before[k][1] == "manual" else "unmatched"


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(step_st, min_size=1, max_size=6))
def test_random_runs_match_model(
    tmp_path_factory: pytest.TempPathFactory, steps: list[Any]
) -> None:
    root = tmp_path_factory.mktemp("hypo")
    cfg = make_project(root, HYPO_SPEC)
    out, state = root / "out", root / ".segcli"
    model = Model()
    events: list[tuple[int, datetime]] = []
    at = HYPO_DAY0
    prev_members: dict[str, set[int]] = {}
    prev_frozen: set[int] = set()
    run_ids: list[str] = []
    counts: dict[str, list[tuple[int, int, int]]] = {"dyn": [], "semi": [], "stat": []}
    for i, s in enumerate(steps):
        at += timedelta(days=s["advance"])
        # Event rows accumulate across exports, spread over the day before as_of (and
        # some after it, which the run must not see until its as_of catches up).
        events += [(k, at - timedelta(hours=6 * (d - 1))) for k, d in s["events"]]
        write_csv(
            root / "contacts.csv",
            ["contact_id", "v"],
            [{"contact_id": k, "v": v} for k, v in sorted(s["contacts"].items())],
        )
        write_csv(
            root / "email.csv",
            EVENT_COLS,
            # An orphan row (key 99) keeps the file's columns typed when no one clicked.
            [click(k, t.strftime("%Y-%m-%dT%H:%M:%SZ")) for k, t in [(99, HYPO_DAY0), *events]],
        )
        for name in ("inc", "exc"):
            rows = [{"contact_id": k} for k in sorted(s[name])]
            write_csv(root / "lists" / f"{name}.csv", ["contact_id"], rows)
        want_changes = model.step(s["contacts"], events, s["inc"], s["exc"], at)
        result = api.run(api.load(cfg), as_of=at)
        run_ids.append(result.run_id)
        present = set(s["contacts"])
        for name in ("dyn", "semi", "stat"):
            df = pl.read_parquet(out / "segments" / f"{name}.parquet")
            got = {
                k: (j, src)
                for k, j, src in zip(df["contact_id"], df["joined_at"], df["source"], strict=True)
            }
            assert got == model.members[name], (i, name)
            got_changes = changes(out, name)
            assert got_changes == want_changes[name], (i, name)
            now = set(got)
            before = prev_members.get(name, set())
            # entered/left are exactly the set differences of consecutive snapshots.
            assert {k for k, c, _ in got_changes if c == "entered"} == now - before
            assert {k for k, c, _ in got_changes if c == "left"} == before - now
            assert {k for k, _, r in got_changes if r == "deleted"} == before - present
            if name == "semi":  # semi_dynamic never shrinks except for deletions
                assert before & present <= now
            if name == "stat":  # static never changes without --refresh (but deletions)
                frozen = {k for k in now if got[k][1] != "manual"}
                if i > 0:
                    assert frozen == prev_frozen & present
                prev_frozen = frozen
            if i > 0:
                d = views.diff(api.load(cfg, with_data=False), name, None, None, state)
                assert (set(d.entered), set(d.left)) == (now - before, before - now)
            prev_members[name] = now
            counts[name].append((len(now), len(now - before), len(before - now)))
    # history reports the same sizes and counts, run by run.
    for name, want in counts.items():
        hist = views.history(api.load(cfg, with_data=False), name, state)
        assert [h["run_id"] for h in hist] == run_ids
        assert [(h["size"], h["entered"], h["left"]) for h in hist] == want


# ------------------------------------------------------------------ 3. refresh, definitions


def test_refresh_recomputes_static_and_semi_dynamic(tmp_path: Path) -> None:
    cfg = make_project(tmp_path)
    out = tmp_path / "out"
    write_export(
        tmp_path,
        [contact(1, "VP Sales"), contact(2, "VP Ops"), contact(3)],
        [click(3, "2026-02-20T10:00:00")],
        {"vip": []},
    )
    run(cfg, "2026-03-01")
    write_export(tmp_path, [contact(1, "Director"), contact(2, "VP Ops"), contact(3, "VP Eng")])
    # Without --refresh both keep 1 (a dry run shows it); with it both drop 1 and take 3
    # (reason `refreshed`), while 2's stay goes on (joined_at unchanged).
    dry = run(cfg, "2026-03-02", dry_run=True)
    assert {s.name: s.size for s in dry.segments if s.name.startswith("vp_s")} == {
        "vp_static": 2,
        "vp_semi": 3,
    }
    r = run(cfg, "2026-03-02", refresh=["vp_static", "vp_semi"])
    assert r.warnings == []
    for name in ("vp_static", "vp_semi"):
        assert members(out, name) == {2: (D1, "rule"), 3: (D2, "rule")}, name
        assert changes(out, name) == {(1, "left", "refreshed"), (3, "entered", "refreshed")}
    # A dynamic segment is unaffected by --refresh of others.
    assert changes(out, "vp_dyn") == {(1, "left", "unmatched"), (3, "entered", "matched")}
    # The next plain run freezes / accumulates again from the refreshed base.
    write_export(tmp_path, [contact(1, "VP Sales"), contact(2, "Analyst"), contact(3, "VP Eng")])
    run(cfg, "2026-03-03")
    assert members(out, "vp_static") == {2: (D1, "kept"), 3: (D2, "rule")}
    assert members(out, "vp_semi") == {1: (D3, "rule"), 2: (D1, "kept"), 3: (D2, "rule")}
    # --refresh NAME refreshes NAME even when --segment picks only other segments.
    write_export(tmp_path, [contact(1, "VP Sales"), contact(2, "Analyst"), contact(3, "Analyst")])
    r = run(cfg, "2026-03-03", segments=["clickers"], refresh=["vp_semi"])
    assert {s.name for s in r.segments} == {"clickers", "vp_semi"}
    assert members(out, "vp_semi") == {1: (D3, "rule")}
    assert changes(out, "vp_semi") == {
        (2, "left", "refreshed"),
        (3, "left", "refreshed"),
    }
    # A deleted contact leaves even a refreshed segment with reason `deleted`.
    write_export(tmp_path, [contact(1, "VP Sales"), contact(3, "Analyst")])
    run(cfg, "2026-03-04", refresh=["vp_static"])
    assert changes(out, "vp_static") == {
        (1, "entered", "refreshed"),
        (2, "left", "deleted"),
        (3, "left", "refreshed"),
    }


def test_changed_definition_is_announced_and_members_kept(tmp_path: Path) -> None:
    cfg = make_project(tmp_path)
    out = tmp_path / "out"
    write_export(
        tmp_path,
        [contact(1, "VP Sales"), contact(2, "Chief of Staff"), contact(3)],
        [click(3, "2026-02-20T10:00:00")],
        {"vip": []},
    )
    run(cfg, "2026-03-01")
    assert run(cfg, "2026-03-02").warnings == []  # an unchanged spec says nothing
    # Reformatting (positions, quoting) is not a change of definition, nor are the
    # description, tags and expect (they do not decide who is a member).
    spec = SPEC.replace("VP}", '"VP"}').replace(
        "kind: static,", "kind: static, description: The VPs, tags: [x], expect: {min_size: 1},"
    )
    cfg.write_text("\n\n" + spec, encoding="utf-8")
    assert run(cfg, "2026-03-02").warnings == []
    cfg.write_text(SPEC.replace("starts_with: VP", "starts_with: Chief"), encoding="utf-8")
    r = run(cfg, "2026-03-03")
    for name in ("vp_static", "vp_semi"):
        note = [w for w in r.warnings if f"segment '{name}' changed" in w]
        assert len(note) == 1 and f"--refresh {name}" in note[0], r.warnings
    dyn_note = [w for w in r.warnings if "segment 'vp_dyn' changed" in w]
    assert len(dyn_note) == 1 and "kept" not in dyn_note[0]
    assert not [w for w in r.warnings if "clickers" in w]
    assert members(out, "vp_dyn") == {2: (D3, "rule")}
    assert members(out, "vp_static") == {1: (D1, "kept")}  # frozen: the old members stay
    assert members(out, "vp_semi") == {1: (D1, "kept"), 2: (D3, "rule")}  # old ∪ new matches
    # The CLI prints the note.
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-04", "--refresh", "vp_static")
    assert res.exit_code == 0 and "changed" not in res.stderr  # announced once
    assert members(out, "vp_static") == {2: (date(2026, 3, 4), "rule")}
    cfg.write_text(SPEC.replace("kind: static", "kind: semi_dynamic"), encoding="utf-8")
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-05")
    assert res.exit_code == 0
    assert "note: segment 'vp_static' changed kind: static -> semi_dynamic" in res.stderr


def test_from_file_static_segment(tmp_path: Path) -> None:
    spec = SPEC + "  trade_show: {kind: static, from_file: lists/trade_show.csv}\n"
    cfg = make_project(tmp_path, spec)
    out = tmp_path / "out"
    write_export(
        tmp_path,
        [contact(1), contact(2), contact(3), contact(4)],
        [click(3, "2026-02-20T10:00:00")],
        {"vip": [], "trade_show": [1, 3, 999]},
    )
    r = run(cfg, "2026-03-01")
    assert members(out, "trade_show") == {1: (D1, "rule"), 3: (D1, "rule")}
    assert [w for w in r.warnings if "trade_show.csv" in w and "999" in w]  # reported
    # Frozen: an edited file changes nothing until --refresh; deletions still leave.
    write_export(tmp_path, [contact(1), contact(2), contact(4)], lists={"trade_show": [2, 3]})
    run(cfg, "2026-03-02")
    assert members(out, "trade_show") == {1: (D1, "kept")}
    assert changes(out, "trade_show") == {(3, "left", "deleted")}
    run(cfg, "2026-03-03", refresh=["trade_show"])
    assert members(out, "trade_show") == {2: (D3, "rule")}
    assert changes(out, "trade_show") == {(1, "left", "refreshed"), (2, "entered", "refreshed")}


OVERRIDE_SPEC = """\
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.csv, key: contact_id}
segments:
  us_dyn: {where: {field: country, eq: US}, include_file: lists/inc.csv,
           exclude_file: lists/exc.csv}
  us_semi: {kind: semi_dynamic, where: {field: country, eq: US}, include_file: lists/inc.csv,
            exclude_file: lists/exc.csv}
  us_static: {kind: static, where: {field: country, eq: US}, include_file: lists/inc.csv,
              exclude_file: lists/exc.csv}
"""


def test_overrides_last_exactly_as_long_as_their_line(tmp_path: Path) -> None:
    cfg = make_project(tmp_path, OVERRIDE_SPEC)
    out = tmp_path / "out"
    people = [contact(1), contact(2), contact(3, country="DE"), contact(4, country="FR")]
    kinds = ("us_dyn", "us_semi", "us_static")
    # Night 1: 2 is excluded, 3 included, 4 both (exclusion wins).
    write_export(tmp_path, people, lists={"inc": [3, 4], "exc": [2, 4]})
    run(cfg, "2026-03-01")
    for n in kinds:
        assert members(out, n) == {1: (D1, "rule"), 3: (D1, "manual")}, n
    # Night 2: the lines for 2 and 3 are removed: 2 joins (a new stay), 3 leaves.
    write_export(tmp_path, people, lists={"inc": [4], "exc": [4]})
    run(cfg, "2026-03-02")
    for n in kinds:
        assert members(out, n) == {1: (D1, "rule"), 2: (D2, "rule")}, n
        # 3 was in by its include line alone: removing the line is a manual change.
        assert changes(out, n) == {(2, "entered", "matched"), (3, "left", "manual")}, n
    # Night 3: 1 excluded, 4's exclude line removed (so its include line now counts).
    write_export(tmp_path, people, lists={"inc": [4], "exc": [1]})
    run(cfg, "2026-03-03")
    for n in kinds:
        assert members(out, n) == {2: (D2, "rule"), 4: (D3, "manual")}, n
        # An exclude_file removal is left/manual, an include_file addition entered/manual.
        assert changes(out, n) == {(1, "left", "manual"), (4, "entered", "manual")}, n
    # Night 4: 1's line removed; 1 stopped being in the US: only the kept kinds take it back.
    write_export(tmp_path, [contact(1, country="DE"), *people[1:]], lists={"inc": [], "exc": []})
    run(cfg, "2026-03-04")
    assert members(out, "us_dyn") == {2: (D2, "rule")}
    for n in ("us_semi", "us_static"):
        assert members(out, n) == {1: (date(2026, 3, 4), "kept"), 2: (D2, "rule")}, n
        assert changes(out, n) == {(1, "entered", "matched"), (4, "left", "manual")}, n


# ------------------------------------------------------------------ 4. time


def small_project(root: Path) -> Path:
    cfg = make_project(root)
    write_export(
        root,
        [contact(1, "VP Sales"), contact(2), contact(3)],
        [click(2, "2026-02-20T10:00:00"), click(2, "2026-02-21T10:00:00")],
        {"vip": [3]},
    )
    return cfg


def test_as_of_before_last_run_is_refused_and_state_unchanged(tmp_path: Path) -> None:
    cfg = small_project(tmp_path)
    run(cfg, "2026-03-01")
    run(cfg, "2026-03-05")
    # Refusing takes (and releases) the lock, which touches the state directory's mtime
    # and nothing else.
    before = tree(tmp_path, dir_mtimes=False)
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-04")
    assert res.exit_code == 4
    assert "before the last committed run" in res.stderr and "2026-03-05" in res.stderr
    assert "--dry-run" in res.stderr and "Traceback" not in res.output + res.stderr
    assert tree(tmp_path, dir_mtimes=False) == before
    with pytest.raises(StateError):
        run(cfg, "2026-03-04T23:59:59")
    assert tree(tmp_path, dir_mtimes=False) == before
    # The same instant again is not "before": it is allowed (a re-run of the night).
    run(cfg, "2026-03-05")
    assert len(json.loads((tmp_path / ".segcli" / "manifest.json").read_text())["runs"]) == 3


def test_dry_run_with_earlier_as_of_writes_nothing(tmp_path: Path) -> None:
    cfg = small_project(tmp_path)
    # On a fresh project a dry run creates neither the state nor the output directory.
    before = tree(tmp_path)
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-01", "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    assert tree(tmp_path) == before
    assert json.loads(res.stdout)["out_dir"] is None
    run(cfg, "2026-03-01")
    run(cfg, "2026-03-05")
    before = tree(tmp_path)
    time.sleep(0.01)  # an mtime touched by the dry run would differ
    res = cli("run", "-c", str(cfg), "--as-of", "2026-02-25", "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    sizes = {s["name"]: s["size"] for s in body["segments"]}
    assert sizes["vp_dyn"] == 1 and sizes["clickers"] == 1
    assert tree(tmp_path) == before
    r = api.run(api.load(cfg), as_of="2026-02-25", dry_run=True, out_dir=tmp_path / "elsewhere")
    assert r.out_dir is None and r.files == []
    assert tree(tmp_path) == before


# ------------------------------------------------------------------ 5. lock


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


def write_lock(state: Path, pid: int, started: str = "2026-03-01T02:00:00+00:00") -> Path:
    state.mkdir(parents=True, exist_ok=True)
    lock = state / "lock"
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started_at": started}))
    return lock


def test_held_lock_fails_at_once_naming_the_holder(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    cfg = small_project(tmp_path)
    run(cfg, "2026-03-01")
    lock = write_lock(tmp_path / ".segcli", sleeper.pid)
    before = tree(tmp_path, dir_mtimes=False)
    t = time.perf_counter()
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-02")
    assert time.perf_counter() - t < 5
    assert res.exit_code == 4
    assert f"pid {sleeper.pid}" in res.stderr and "2026-03-01T02:00:00+00:00" in res.stderr
    assert "locked" in res.stderr and "Traceback" not in res.stderr
    assert tree(tmp_path, dir_mtimes=False) == before  # the holder's lock is left alone
    assert json.loads(lock.read_text())["pid"] == sleeper.pid
    # A dry run reads without the lock.
    assert cli("run", "-c", str(cfg), "--as-of", "2026-03-02", "--dry-run").exit_code == 0


def test_dead_holders_lock_is_taken_over(tmp_path: Path) -> None:
    cfg = small_project(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = write_lock(tmp_path / ".segcli", dead.pid)
    r = run(cfg, "2026-03-01")
    took = [w for w in r.warnings if "stale lock" in w]
    assert len(took) == 1 and f"pid {dead.pid}" in took[0] and "2026-03-01T02:00:00" in took[0]
    assert not lock.exists()  # released after the run
    assert len(json.loads((tmp_path / ".segcli" / "manifest.json").read_text())["runs"]) == 1
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-02")
    assert res.exit_code == 0 and "stale" not in res.stderr
    write_lock(tmp_path / ".segcli", dead.pid)
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-03")
    assert (
        res.exit_code == 0 and f"note: took over a stale lock left by pid {dead.pid}" in res.stderr
    )


def test_two_concurrent_cli_runs_exactly_one_commits(tmp_path: Path) -> None:
    """A real `segcli run` is held inside its commit (deterministically, by a hook that waits
    for a go file); a second real `segcli run` on the same state fails at once."""
    cfg = small_project(tmp_path)
    run(cfg, "2026-03-01")
    go, ready = tmp_path / "go", tmp_path / "ready"
    env = {**os.environ, **ENV}
    first = subprocess.Popen(
        [sys.executable, str(FIXTURES / "slow_run.py"), str(ready), str(go),
         "run", "-c", str(cfg), "--as-of", "2026-03-02", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        holder = json.loads((tmp_path / ".segcli" / "lock").read_text())
        assert holder["pid"] == first.pid
        t = time.perf_counter()
        second = subprocess.run(
            [str(SEGCLI), "run", "-c", str(cfg), "--as-of", "2026-03-03"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert time.perf_counter() - t < 10
        assert second.returncode == 4, second.stderr
        assert f"pid {first.pid}" in second.stderr and holder["started_at"] in second.stderr
        assert "Traceback" not in second.stderr
        go.touch()
        stdout, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, stderr
    committed = json.loads((tmp_path / ".segcli" / "manifest.json").read_text())["runs"]
    assert [r["as_of"][:10] for r in committed] == ["2026-03-01", "2026-03-02"]
    assert committed[-1]["run_id"] == json.loads(stdout)["run_id"]
    assert not (tmp_path / ".segcli" / "lock").exists()
    assert cli("run", "-c", str(cfg), "--as-of", "2026-03-03").exit_code == 0


def test_racing_takeovers_of_a_stale_lock_never_overlap(tmp_path: Path) -> None:
    """Several processes find the same dead holder's lock at the same moment: never do two
    hold it at once (one may take it after another released it)."""
    state = tmp_path / ".segcli"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_lock(state, dead.pid)
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(FIXTURES / "grab_lock.py"),
                str(state),
                str(start),
                str(tmp_path / f"won-{i}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(6)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode in (0, 4), err
    held = sorted(tuple(map(float, w.read_text().split()[:2])) for w in tmp_path.glob("won-*"))
    assert held
    for (_, released), (acquired, _) in itertools.pairwise(held):
        assert released <= acquired, held
    assert not (state / "lock").exists()


def test_acquire_lock_in_process(tmp_path: Path) -> None:
    lock = acquire_lock(tmp_path)
    try:
        with pytest.raises(StateError, match=f"pid {os.getpid()}"):
            acquire_lock(tmp_path)
    finally:
        lock.release()
    assert not (tmp_path / "lock").exists()
    acquire_lock(tmp_path).release()


# ------------------------------------------------------------------ 6. corrupt state


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _edit_manifest(fn: Any) -> Any:
    def edit(p: Path) -> None:
        data = json.loads(p.read_text())
        fn(data)
        p.write_text(json.dumps(data))

    return edit


def _first_snapshot(manifest: Path) -> Path:
    rel = json.loads(manifest.read_text())["current"]["vp_semi"]["snapshot"]
    return manifest.parent / rel


CORRUPTIONS: dict[str, tuple[str, Any]] = {
    "truncated manifest": ("manifest.json", _truncate),
    "garbage manifest": ("manifest.json", lambda p: p.write_bytes(b"\x00\xffnot json")),
    "empty manifest": ("manifest.json", lambda p: p.write_bytes(b"")),
    "manifest is a list": ("manifest.json", lambda p: p.write_text("[]")),
    "newer schema_version": (
        "manifest.json", _edit_manifest(lambda d: d.update(schema_version=99))
    ),
    "no runs": ("manifest.json", _edit_manifest(lambda d: d.pop("runs"))),
    "run without as_of": ("manifest.json", _edit_manifest(lambda d: d["runs"][0].pop("as_of"))),
    "bad as_of": ("manifest.json", _edit_manifest(lambda d: d["runs"][0].update(as_of="soon"))),
    "current entry without snapshot": (
        "manifest.json", _edit_manifest(lambda d: d["current"]["vp_semi"].pop("snapshot"))
    ),
    "current is a list": ("manifest.json", _edit_manifest(lambda d: d.update(current=[]))),
    "run files outside out_dir": (
        "manifest.json", _edit_manifest(lambda d: d["runs"][0].update(files=["../../x"]))
    ),
    "relative out_dir": (
        "manifest.json", _edit_manifest(lambda d: d["runs"][0].update(out_dir="out"))
    ),
    "missing snapshot": ("snapshot", lambda p: p.unlink()),
    "truncated snapshot": ("snapshot", _truncate),
    "snapshot without columns": (
        "snapshot", lambda p: pl.DataFrame({"contact_id": [1]}).write_parquet(p)
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_state_exits_4_naming_the_file(tmp_path: Path, case: str) -> None:
    cfg = small_project(tmp_path)
    run(cfg, "2026-03-01")
    manifest = tmp_path / ".segcli" / "manifest.json"
    target, corrupt = CORRUPTIONS[case]
    path = manifest if target == "manifest.json" else _first_snapshot(manifest)
    corrupt(path)
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-02")
    assert res.exit_code == 4, (res.exit_code, res.output, res.stderr)
    error = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(error) == 1 and str(path) in error[0], res.stderr
    assert "Traceback" not in res.output + res.stderr
    if target == "manifest.json":
        assert "schema_version 99" in res.stderr if "schema" in case else "corrupt" in res.stderr
    # The lock is released; --debug shows the traceback; history/diff also fail cleanly.
    assert not (tmp_path / ".segcli" / "lock").exists()
    dbg = cli("run", "-c", str(cfg), "--as-of", "2026-03-02", "--debug")
    assert dbg.exit_code == 4 and "Traceback" in dbg.stderr
    if target == "manifest.json":
        for args in (["history"], ["diff", "vp_semi"]):
            res = cli(*args, "-c", str(cfg))
            assert res.exit_code == 4 and str(path) in res.stderr, (args, res.stderr)
    else:
        res = cli("diff", "vp_semi", "-c", str(cfg), "--from", "x", "--to", "y")
        assert res.exit_code in (2, 4) and "Traceback" not in res.stderr


def test_corrupt_state_via_subprocess_has_no_traceback(tmp_path: Path) -> None:
    cfg = small_project(tmp_path)
    run(cfg, "2026-03-01")
    (tmp_path / ".segcli" / "manifest.json").write_text('{"schema_version": 1, "ru')
    res = subprocess.run(
        [str(SEGCLI), "run", "-c", str(cfg), "--as-of", "2026-03-02"],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=60,
    )  # fmt: skip
    assert res.returncode == 4
    assert res.stderr.startswith("error: state file ") and "manifest.json" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


# ------------------------------------------------------------------ 8. retention


def test_keep_runs_prunes_old_runs(tmp_path: Path) -> None:
    cfg = small_project(tmp_path)
    state = tmp_path / ".segcli"
    ids = [run(cfg, f"2026-03-0{d}", keep_runs=2).run_id for d in range(1, 5)]
    manifest = json.loads((state / "manifest.json").read_text())
    assert [r["run_id"] for r in manifest["runs"]] == ids[2:]
    assert sorted(p.name for p in (state / "runs").iterdir()) == sorted(ids[2:])
    # keep_runs from the spec (state: {keep_runs: N}) and from --keep-runs.
    cfg.write_text(SPEC + "state: {keep_runs: 3}\n", encoding="utf-8")
    ids.append(run(cfg, "2026-03-05").run_id)
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-06", "--keep-runs", "1", "--json")
    ids.append(json.loads(res.stdout)["run_id"])
    manifest = json.loads((state / "manifest.json").read_text())
    assert [r["run_id"] for r in manifest["runs"]] == ids[-1:]
    assert [p.name for p in (state / "runs").iterdir()] == ids[-1:]
    # A diff across a pruned run is a clear error, never a made-up "everyone entered".
    res = cli("diff", "vp_dyn", "-c", str(cfg), "--from", ids[0])
    assert res.exit_code in (2, 4) and "pruned" in res.stderr and ids[0] in res.stderr
    res = cli("diff", "vp_dyn", "-c", str(cfg))
    assert res.exit_code in (2, 4) and "pruned" in res.stderr, res.stdout
    assert "Traceback" not in res.stderr
    # history lists what is kept.
    hist = json.loads(cli("history", "vp_dyn", "-c", str(cfg), "--json").stdout)
    assert [h["run_id"] for h in hist] == ids[-1:]
    for bad in ("0", "-1"):
        res = cli("run", "-c", str(cfg), "--as-of", "2026-03-07", "--keep-runs", bad)
        assert res.exit_code == 2 and "keep" in res.stderr, res.stderr


def test_keep_runs_keeps_snapshots_still_current(tmp_path: Path) -> None:
    """A segment run less often (--segment) keeps the run holding its current snapshot."""
    cfg = small_project(tmp_path)
    state = tmp_path / ".segcli"
    out = tmp_path / "out"
    first = run(cfg, "2026-03-01", keep_runs=2).run_id
    ids = [run(cfg, f"2026-03-0{d}", segments=["vp_dyn"], keep_runs=2).run_id for d in (2, 3, 4)]
    manifest = json.loads((state / "manifest.json").read_text())
    assert [r["run_id"] for r in manifest["runs"]] == [first, *ids[1:]]
    assert manifest["current"]["vp_semi"]["run_id"] == first
    assert manifest["current"]["vp_dyn"]["run_id"] == ids[-1]
    assert sorted(p.name for p in (state / "runs").iterdir()) == sorted([first, *ids[1:]])
    # The kept snapshot still drives the semi_dynamic segment: a VP who is no longer one
    # stays (kept), joined on the first night.
    write_export(tmp_path, [contact(1, "Director"), contact(2), contact(3)])
    fifth = run(cfg, "2026-03-05", keep_runs=2).run_id
    assert members(out, "vp_semi") == {1: (D1, "kept")}
    assert members(out, "vp_static") == {1: (D1, "kept"), 3: (D1, "manual")}
    # The first run is still what vp_semi was at the kept run ids[2]: it stays, so that a
    # diff between the two kept runs is right.
    manifest = json.loads((state / "manifest.json").read_text())
    assert [r["run_id"] for r in manifest["runs"]] == [first, ids[2], fifth]
    d = views.diff(api.load(cfg, with_data=False), "vp_semi", None, None, state)
    assert (d.entered, d.left) == ([], [])
    # Once every kept run has newer snapshots, the first run goes.
    sixth = run(cfg, "2026-03-06", keep_runs=2).run_id
    manifest = json.loads((state / "manifest.json").read_text())
    assert [r["run_id"] for r in manifest["runs"]] == [fifth, sixth]
    assert manifest["pruned"] == [ids[0], ids[1], first, ids[2]]
    assert sorted(p.name for p in (state / "runs").iterdir()) == sorted([fifth, sixth])
    with pytest.raises(StateError, match="pruned"):
        views.diff(api.load(cfg, with_data=False), "vp_semi", ids[0], None, state)
    with pytest.raises(StateError, match="pruned"):
        views.diff(api.load(cfg, with_data=False), "vp_semi", None, fifth, state)


# ------------------------------------------------------------------ 7. interrupted commits


def test_commit_interrupted_before_the_manifest_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic companion of the kill loop: the snapshots are in place, the manifest is
    not yet replaced. The state is the previous commit; the next run cleans up and is right."""
    cfg = small_project(tmp_path)
    state, out = tmp_path / ".segcli", tmp_path / "out"
    run(cfg, "2026-03-01")
    before = (state / "manifest.json").read_bytes()

    def die(path: Path, data: bytes) -> None:
        path.with_name(f".{path.name}.tmp-999999").write_bytes(data[:10])  # half-written
        raise RuntimeError("killed")

    monkeypatch.setattr("segcli.state.store.atomic_write_bytes", die)
    write_export(tmp_path, [contact(1, "Analyst"), contact(2, "VP Eng"), contact(3)])
    with pytest.raises(RuntimeError):
        run(cfg, "2026-03-02")
    monkeypatch.undo()
    assert (state / "manifest.json").read_bytes() == before
    assert len(list((state / "runs").iterdir())) == 2  # the committed run and the stray
    # Debris of other kinds a killed run may leave.
    (state / "runs" / ".tmp-0123456789ab").mkdir()
    (state / ".lock.999999.abcd1234").write_text("{}")
    (out / "segments" / ".vp_dyn.parquet.tmp-999999").write_bytes(b"PAR")
    r = run(cfg, "2026-03-02")
    manifest = json.loads((state / "manifest.json").read_text())
    assert {p.name for p in (state / "runs").iterdir()} == {x["run_id"] for x in manifest["runs"]}
    assert sorted(p.name for p in state.iterdir()) == [".segcli-state", "manifest.json", "runs"]
    assert not list(out.rglob(".*tmp*"))
    assert [x["run_id"] for x in manifest["runs"]][-1] == r.run_id and len(manifest["runs"]) == 2
    assert members(out, "vp_dyn") == {2: (D2, "rule")}
    assert changes(out, "vp_dyn") == {(1, "left", "unmatched"), (2, "entered", "matched")}
    assert members(out, "vp_semi") == {1: (D1, "kept"), 2: (D2, "rule")}
