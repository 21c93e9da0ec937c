"""`explain`: the plan is printed without executing anything, `--json` is structured, and both
forms show the last committed run unless `--as-of` is given (SPEC §3.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from segcli import api
from segcli.cli import app
from segcli.engines import polars as polars_engine

ENV = {"NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=ENV)


def test_explain_segment_executes_nothing(basic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("explain NAME must not execute the plan or collect rows")

    monkeypatch.setattr(polars_engine, "execute", refuse)
    monkeypatch.setattr(pl.LazyFrame, "collect", refuse)
    result = invoke("explain", "engaged_europe", "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert "source email: 2 scan(s), 3 aggregate(s)" in result.stdout


def test_explain_segment_needs_schemas_only(basic: Path) -> None:
    before = invoke("explain", "engaged_europe", "--as-of", "2026-11-20").stdout
    # The event rows replaced by an empty file with the same columns: the same plan.
    email = basic / "email.csv"
    header = email.read_text().splitlines()[0]
    empty = api.load(basic / "segments.yaml").catalog.frame("email").head(0).collect()
    email.unlink()
    empty.write_parquet(basic / "email.parquet")
    spec = basic / "segments.yaml"
    spec.write_text(spec.read_text().replace("path: email.csv", "path: email.parquet"))
    assert header.startswith("contact_id")
    after = invoke("explain", "engaged_europe", "--as-of", "2026-11-20").stdout
    assert after == before


def test_explain_json_is_structured(basic: Path) -> None:
    result = invoke("explain", "engaged_europe", "--as-of", "2026-11-20", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["segment"] == "engaged_europe"
    assert data["run"] is None
    assert data["where"]["text"] == "all of:"
    kids = [c["text"] for c in data["where"]["children"]]
    assert kids == ["is a member of segment europe", "any of:"]
    assert data["order"] == ["europe", "vps", "pricing_clickers", "engaged_europe"]
    scans = data["plan"]["scans"]
    assert [s["types"] for s in scans] == [["click"], ["hard_bounce"]]
    assert all(a["rows"] for s in scans for a in s["aggregates"])


def test_explain_contact_json_has_truth_and_values(basic: Path) -> None:
    result = invoke("explain", "--contact", "103", "--as-of", "2026-11-20", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_name = {s["segment"]: s for s in data["segments"]}
    ee = by_name["engaged_europe"]
    assert ee["member"] is False
    assert ee["reason"] == "matches `where` but is removed by `exclude`"
    assert ee["where"]["holds"] is True
    assert ee["exclude"] == {
        "text": "number of hard_bounce rows of email is at least 1",
        "holds": True,
        "value": 1,
    }
    assert by_name["vps"]["member"] is True
    engagement = data["scores"][0]
    assert engagement["model"] == "engagement"
    assert engagement["score"] == 15.0
    assert sum(r["points"] for r in engagement["rules"]) == 15.0


def test_explain_defaults_to_the_last_committed_run(basic: Path) -> None:
    ran = invoke("run", "--as-of", "2026-11-10")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads((basic / ".segcli" / "manifest.json").read_text())["runs"][-1]["run_id"]
    seg = invoke("explain", "pricing_clickers")
    assert seg.exit_code == 0, seg.output
    assert f"run {run_id} as of 2026-11-10T00:00:00+01:00 (the last committed run)" in seg.stdout
    assert "plan (as of 2026-11-10T00:00:00+01:00):" in seg.stdout
    # explain --contact agrees with the run's own membership files, contact by contact.
    members = set(
        pl.read_parquet(basic / "out" / "segments" / "pricing_clickers.parquet")[
            "contact_id"
        ].to_list()
    )
    keys = pl.read_csv(basic / "contacts.csv")["contact_id"].to_list()
    for k in keys:
        out = json.loads(invoke("explain", "--contact", str(k), "--json").stdout)
        assert out["run"] == run_id
        verdict = {s["segment"]: s["member"] for s in out["segments"]}
        assert verdict["pricing_clickers"] == (k in members), k


def test_explain_contact_says_when_the_run_recorded_otherwise(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    project = api.load(basic / "segments.yaml")
    assert project.spec.segments["vps"].where is not None
    # After the run, contact 103's title changes: re-evaluation and the run now disagree.
    contacts = pl.read_csv(basic / "contacts.csv")
    contacts = contacts.with_columns(
        pl.when(pl.col("contact_id") == 103)
        .then(pl.lit("Intern"))
        .otherwise(pl.col("title"))
        .alias("title")
    )
    contacts.write_csv(basic / "contacts.csv")
    out = invoke("explain", "--contact", "103")
    assert out.exit_code == 0, out.output
    assert "out vps: does not match the rule" in out.stdout
    assert "note: the last committed run recorded this contact as IN" in out.stdout


def test_explain_says_sequences_run_in_a_pass_of_their_own(basic: Path) -> None:
    spec = basic / "segments.yaml"
    seq_segment = (
        "segments:\n  click_then_bounce:\n    where:\n      sequence:\n        steps:\n"
        "          - {source: email, type: click}\n"
        "          - {source: email, type: hard_bounce}\n"
    )
    spec.write_text(spec.read_text().replace("segments:\n", seq_segment, 1))
    seq = invoke("explain", "click_then_bounce", "--as-of", "2026-11-20")
    assert seq.exit_code == 0, seq.output
    assert "sequences matched first, then everything else collected in one query" in seq.stdout
    plain = invoke("explain", "vps", "--as-of", "2026-11-20")
    assert plain.stdout.rstrip().endswith("all collected in one query")
