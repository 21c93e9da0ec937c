"""Views a person reads: they show the last committed run, say which, and in local time.

SPEC §3.2: `show`, `report`, `diff` and `history` read the last committed run in the state,
not whatever files are in `out/`; times shown to a person are in the project timezone with
their offset; CSV timestamps are ISO 8601 with `+00:00`.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from segcli.cli import app

PROJECTS = Path(__file__).parent / "projects"
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
RUN_ID = re.compile(r"[0-9a-f]{12}")


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env or ENV)


@pytest.fixture
def basic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "basic"
    shutil.copytree(PROJECTS / "basic", root)
    monkeypatch.chdir(root)
    return root


def move_ben_to_germany(root: Path) -> None:
    """Contact 102 (US) becomes German: `europe` grows from 101, 103 to 101, 102, 103."""
    path = root / "contacts.csv"
    path.write_text(path.read_text().replace("Ben,US,", "Ben,DE,"))


def run_ids(root: Path) -> list[str]:
    manifest = json.loads((root / ".segcli" / "manifest.json").read_text())
    return [r["run_id"] for r in manifest["runs"]]


def show_keys(*args: str) -> list[int]:
    res = invoke("show", *args, "--format", "csv")
    assert res.exit_code == 0, res.output
    return pl.read_csv(res.stdout.encode())["contact_id"].to_list()


# ---------------------------------------------------------------- the last committed run


def test_show_ignores_an_older_parquet_file_beside_a_later_csv_run(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    move_ben_to_germany(basic)
    assert invoke("run", "--as-of", "2026-11-21", "--format", "csv").exit_code == 0
    # out/segments/europe.parquet is the first run's; the last run wrote europe.csv.
    assert pl.read_parquet(basic / "out/segments/europe.parquet").height == 2
    assert show_keys("europe") == [101, 102, 103]
    res = invoke("show", "europe")
    assert res.stdout.splitlines()[0] == (
        f"europe: 3 members (showing 3) — run {run_ids(basic)[-1]}, as of 2026-11-21T00:00:00+01:00"
    )


def test_show_and_report_follow_a_run_written_elsewhere(basic: Path, tmp_path: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    move_ben_to_germany(basic)
    elsewhere = tmp_path / "elsewhere"
    assert invoke("run", "--as-of", "2026-11-21", "--out", str(elsewhere)).exit_code == 0
    assert show_keys("europe") == [101, 102, 103]  # out/ still holds the first run's files
    # The run recorded where it wrote: scores are read from there without --out.
    for extra in ([], ["--out", str(elsewhere)]):
        res = invoke("report", "--json", *extra)
        assert res.exit_code == 0, res.output
        data = json.loads(res.stdout)
        assert data["sizes"]["europe"] == 3
        assert data["run"] == {
            "run_id": run_ids(basic)[-1],
            "as_of": "2026-11-20T23:00:00+00:00",
        }
    scores = pl.read_parquet(elsewhere / "scores.parquet")
    res = invoke("show", "europe", "--scores", "--format", "csv")
    assert res.exit_code == 0, res.output
    shown = pl.read_csv(res.stdout.encode())
    want = scores.filter(pl.col("contact_id").is_in([101, 102, 103]))["engagement"]
    assert shown["engagement"].to_list() == want.to_list()


def test_outputs_of_another_run_are_refused_not_shown(basic: Path, tmp_path: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    first = run_ids(basic)[0]
    assert invoke("run", "--as-of", "2026-11-21", "--out", str(tmp_path / "b")).exit_code == 0
    last = run_ids(basic)[-1]
    # Scores live only in the outputs: out/ holds the first run's, so it is not read.
    res = invoke("show", "europe", "--scores", "--out", "out")
    assert res.exit_code == 4
    assert res.stderr == (
        f"error: out holds run {first}'s outputs, not those of the last committed run {last}, "
        "as of 2026-11-21T00:00:00+01:00: pass --out with the folder that run wrote to, or "
        "run `segcli run` again\n"
    )
    assert invoke("report", "--out", "out").exit_code == 4


def test_views_before_any_run_say_so(basic: Path) -> None:
    for args in (["show", "europe"], ["report"], ["diff", "europe"]):
        res = invoke(*args)
        assert res.exit_code == 4, args
        assert res.stderr.startswith("error: no committed run") and "segcli run" in res.stderr


def test_show_a_segment_no_run_has_computed(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20", "--segment", "vps").exit_code == 0
    res = invoke("show", "quiet")
    assert res.exit_code == 4
    assert "has computed segment 'quiet'" in res.stderr


def test_report_says_which_run_it_shows(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    res = invoke("report")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == (
        f"last committed run {run_ids(basic)[0]}, as of 2026-11-20T00:00:00+01:00"
    )


# ---------------------------------------------------------------- times for a person


def test_history_and_diff_show_local_times(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    assert invoke("run", "--as-of", "2026-11-21T09:30").exit_code == 0
    first, second = run_ids(basic)
    res = invoke("history", "europe")
    assert res.exit_code == 0, res.output
    assert f"│ {first} │ 2026-11-20T00:00:00+01:00 │ europe" in res.stdout
    assert f"│ {second} │ 2026-11-21T09:30:00+01:00 │ europe" in res.stdout
    assert "23:00" not in res.stdout
    res = invoke("diff", "europe")
    assert res.stdout.splitlines()[0] == (
        f"europe: run {first} (2026-11-20T00:00:00+01:00) -> "
        f"run {second} (2026-11-21T09:30:00+01:00)"
    )
    # JSON keeps the stored UTC instants, which machines compare.
    hist = json.loads(invoke("history", "europe", "--json").stdout)
    assert [h["as_of"] for h in hist] == ["2026-11-19T23:00:00+00:00", "2026-11-21T08:30:00+00:00"]


def test_report_runs_table_in_local_time(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    res = invoke("report")
    assert "│ 2026-11-20T00:00:00+01:00 │" in res.stdout and "2026-11-19T23" not in res.stdout


def test_csv_outputs_write_offsets_with_a_colon(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20", "--format", "csv").exit_code == 0
    changes = (basic / "out/changes/vps.csv").read_text().splitlines()
    assert changes[1:] == [
        "101,entered,matched,2026-11-19T23:00:00+00:00",
        "103,entered,matched,2026-11-19T23:00:00+00:00",
    ]
    df = pl.read_csv(basic / "out/segments/vps.csv", try_parse_dates=True)
    assert df["joined_at"].dtype == pl.Datetime("us", "UTC")


# ---------------------------------------------------------------- show


def test_show_refuses_a_negative_limit(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    res = invoke("show", "europe", "--limit", "-1")
    assert res.exit_code == 2
    assert res.stderr == "error: --limit must be 0 or more, not -1\n"
    res = invoke("show", "europe", "--limit", "0")
    assert res.exit_code == 0 and "2 members (showing 0)" in res.stdout


def test_show_scores(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    res = invoke("show", "hot", "--scores", "--columns", "first_name", "--format", "csv")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == (
        "contact_id,joined_at,source,first_name,engagement,engagement_pct"
    )
    scores = pl.read_parquet(basic / "out/scores.parquet").filter(
        pl.col("contact_id").is_in([101, 103])
    )
    shown = pl.read_csv(res.stdout.encode())
    assert shown["engagement"].to_list() == scores["engagement"].to_list()
    # A score column can also be asked for by name, in the order given.
    res = invoke("show", "hot", "--columns", "engagement_pct,email", "--format", "csv")
    assert res.stdout.splitlines()[0] == "contact_id,joined_at,source,engagement_pct,email"


def test_show_unknown_column_lists_score_columns_too(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    res = invoke("show", "hot", "--columns", "engagment")
    assert res.exit_code == 2
    assert res.stderr.rstrip().endswith("signed_up, engagement, engagement_pct")


def test_tables_to_a_pipe_are_not_cut_at_80_columns(basic: Path) -> None:
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    res = invoke("show", "europe", env={"COLUMNS": None, "NO_COLOR": "1", "TERM": "dumb"})
    lines = res.stdout.splitlines()
    assert max(len(ln) for ln in lines) > 80
    assert "…" not in res.stdout
    assert "│ 101        │ 2026-11-20T00:00:00+01:00 │ rule   │ ana@example.com │" in res.stdout


def test_show_scores_include_grades(basic: Path) -> None:
    spec = basic / "segments.yaml"
    spec.write_text(
        spec.read_text().replace(
            "  engagement:\n    rules:", "  engagement:\n    grades: {A: 10, B: 5}\n    rules:"
        )
    )
    assert invoke("run", "--as-of", "2026-11-20").exit_code == 0
    res = invoke("show", "hot", "--scores", "--columns", "first_name", "--format", "csv")
    assert res.exit_code == 0, res.output
    shown = pl.read_csv(res.stdout.encode())
    assert shown.columns[-3:] == ["engagement", "engagement_pct", "engagement_grade"]
    scores = pl.read_parquet(basic / "out/scores.parquet")
    want = scores.filter(pl.col("contact_id").is_in(shown["contact_id"].implode()))
    assert shown["engagement_grade"].to_list() == want["engagement_grade"].to_list()
    res = invoke("show", "hot", "--columns", "engagement_grade", "--format", "csv")
    assert res.stdout.splitlines()[0] == "contact_id,joined_at,source,engagement_grade"
