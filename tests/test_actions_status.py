"""Delivery status per run (SPEC §2.9): `history` and `report` (text, --json and --html) count
each run's deliveries as done, pending (not attempted yet) and failed (last attempt failed),
from the outbox in the state, and follow it as `deliver` sends what was left."""

from __future__ import annotations

import json
from pathlib import Path

from tests.actions_project import cli, write_contacts, write_spec
from tests.test_actions import COMMAND, EXPORT

NONE = {"done": 0, "pending": 0, "failed": 0}


def cells(stdout: str, first: str) -> list[list[str]]:
    """The rows of a rich table whose first cell is `first`, as stripped cells."""
    out = []
    for line in stdout.splitlines():
        parts = [c.strip() for c in line.split("│")[1:-1]]
        if parts and parts[0] == first:
            out.append(parts)
    return out


def run_ids(root: Path) -> list[str]:
    manifest = json.loads((root / ".segcli" / "manifest.json").read_text())
    return [r["run_id"] for r in manifest["runs"]]


def project(root: Path) -> tuple[str, str]:
    """Run 1: mql gets 1 and 2; its export is delivered, its command fails. Run 2
    (--no-actions): 3 enters, 1 leaves; its three deliveries are not attempted."""
    leave = '[{export: {path: "exports/{segment}-{change}-{run_id}.csv"}}]'
    write_spec(root, on_enter=f"[{EXPORT[1:-1]}, {COMMAND[1:-1]}]", on_leave=leave)
    write_contacts(root, mqls=[1, 2])
    (root / "fail").write_text("")
    assert cli(root, "run", "--as-of", "2026-11-20").exit_code == 5
    write_contacts(root, mqls=[2, 3])
    assert cli(root, "run", "--as-of", "2026-11-21", "--no-actions").exit_code == 5
    first, second = run_ids(root)
    return first, second


def test_history_shows_each_runs_deliveries(tmp_path: Path) -> None:
    first, second = project(tmp_path)
    r = cli(tmp_path, "history")
    assert r.exit_code == 0, r.output
    head = next(line for line in r.stdout.splitlines() if "segment" in line)
    assert head.split("┃")[-2].strip() == "deliveries"
    assert cells(r.stdout, first) == [
        [first, "2026-11-20T00:00:00+01:00", "everyone", "dynamic", "20", "20", "0", "-"],
        [first, "2026-11-20T00:00:00+01:00", "mql", "dynamic", "2", "2", "0", "1 done, 1 failed"],
    ]
    assert cells(r.stdout, second)[1] == [
        second,
        "2026-11-21T00:00:00+01:00",
        "mql",
        "dynamic",
        "2",
        "1",
        "1",
        "3 pending",
    ]
    rows = json.loads(cli(tmp_path, "history", "mql", "--json").stdout)
    assert [row["deliveries"] for row in rows] == [
        {"done": 1, "pending": 0, "failed": 1},
        {"done": 0, "pending": 3, "failed": 0},
    ]
    everyone = json.loads(cli(tmp_path, "history", "everyone", "--json").stdout)
    assert [row["deliveries"] for row in everyone] == [NONE, NONE]

    # `deliver` sends what was left: history follows the outbox.
    (tmp_path / "fail").unlink()
    assert cli(tmp_path, "deliver").exit_code == 0
    rows = json.loads(cli(tmp_path, "history", "mql", "--json").stdout)
    assert [row["deliveries"] for row in rows] == [
        {"done": 2, "pending": 0, "failed": 0},
        {"done": 3, "pending": 0, "failed": 0},
    ]
    assert cells(cli(tmp_path, "history", "mql").stdout, second)[0][-1] == "3 done"


def test_report_shows_each_runs_deliveries(tmp_path: Path) -> None:
    first, second = project(tmp_path)
    r = cli(tmp_path, "report", "--html", "report.html")
    assert r.exit_code == 0, r.output
    assert cells(r.stdout, first) == [
        [first, "2026-11-20T00:00:00+01:00", "22", "0", "1 done, 1 failed"]
    ]
    assert cells(r.stdout, second) == [[second, "2026-11-21T00:00:00+01:00", "1", "1", "3 pending"]]
    page = (tmp_path / "report.html").read_text()
    assert "<th>left</th><th>deliveries</th></tr>" in page
    assert f"<td>{first}</td>" in page and "<td>1 done, 1 failed</td></tr>" in page
    assert "<td>3 pending</td></tr>" in page
    rep = json.loads(cli(tmp_path, "report", "--json").stdout)
    assert [run["deliveries"] for run in rep["runs"]] == [
        {"done": 1, "pending": 0, "failed": 1},
        {"done": 0, "pending": 3, "failed": 0},
    ]
    (tmp_path / "fail").unlink()
    assert cli(tmp_path, "deliver").exit_code == 0
    rep = json.loads(cli(tmp_path, "report", "--json").stdout)
    assert [run["deliveries"] for run in rep["runs"]] == [
        {"done": 2, "pending": 0, "failed": 0},
        {"done": 3, "pending": 0, "failed": 0},
    ]


def test_a_run_without_actions_has_no_deliveries(tmp_path: Path) -> None:
    write_spec(tmp_path)
    write_contacts(tmp_path, mqls=[1])
    assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 0
    [run_id] = run_ids(tmp_path)
    assert cells(cli(tmp_path, "report").stdout, run_id)[0][-1] == "-"
    assert json.loads(cli(tmp_path, "report", "--json").stdout)["runs"][0]["deliveries"] == NONE
