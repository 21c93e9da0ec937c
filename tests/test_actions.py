"""on_enter / on_leave (SPEC §2.9): exports and commands, the outbox, exit 5, `deliver`,
`--dry-run` and `--no-actions`, through the CLI on a small project."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

from segcli import api
from segcli.state import outbox
from tests.actions_project import cli, write_contacts, write_spec

PY = json.dumps(sys.executable)
EXPORT = '[{export: {path: "exports/{segment}-{change}-{date}.csv", columns: [email, first_name, signed_up, seen_at]}}]'  # noqa: E501
# A command that appends what it got (env and stdin) to got.jsonl, or fails when `fail` exists.
RECORDER = (
    "import json,os,sys; "
    "sys.exit(3) if os.path.exists('fail') else None; "
    "env={k: v for k, v in os.environ.items() if k.startswith('SEGCLI_')}; "
    "open('got.jsonl','a').write(json.dumps({'env': env, 'stdin': sys.stdin.read()}) + chr(10))"
)
COMMAND = f"[{{command: [{PY}, -c, {json.dumps(RECORDER)}]}}]"


def got(root: Path) -> list[dict[str, object]]:
    path = root / "got.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_writes_entered_contacts_for_a_campaign_tool(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=EXPORT)
    write_contacts(tmp_path, mqls=[1, 3])
    r = cli(tmp_path, "run", "--as-of", "2026-11-20")
    assert r.exit_code == 0, r.output
    assert "delivered mql.entered.0: export to" in r.stdout
    path = tmp_path / "exports" / "mql-entered-2026-11-20.csv"
    raw = path.read_bytes()
    assert raw.decode("utf-8").splitlines() == [  # one header row, UTF-8, ISO dates
        "contact_id,email,first_name,signed_up,seen_at",
        "1,p1@example.com,Zoë,2026-02-15,2026-11-02T10:00:00+00:00",
        "3,p3@example.com,Name3,2026-04-15,2026-11-04T10:00:00+00:00",
    ]
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_export_formats_and_left_contacts(tmp_path: Path) -> None:
    on_leave = '[{export: {path: "x/{segment}-{change}.jsonl", columns: [email]}}, {export: {path: "x/{run_id}.parquet"}}]'  # noqa: E501
    write_spec(tmp_path, on_leave=on_leave)
    write_contacts(tmp_path, mqls=[1, 2, 3])
    assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 0
    assert not (tmp_path / "x").exists()  # nobody left: nothing to deliver
    write_contacts(tmp_path, mqls=[1], gone=[3])
    r = cli(tmp_path, "run", "--as-of", "2026-11-21", "--json")
    assert r.exit_code == 0, r.output
    run_id = json.loads(r.stdout)["run_id"]
    lines = (tmp_path / "x" / "mql-left.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"contact_id": 2, "email": "p2@example.com"},
        {"contact_id": 3, "email": None},  # deleted from the export: no columns any more
    ]
    frame = pl.read_parquet(tmp_path / "x" / f"{run_id}.parquet")
    assert frame.columns == ["contact_id", "email", "first_name", "stage", "signed_up", "seen_at"]
    assert frame["contact_id"].to_list() == [2, 3]


def test_command_gets_contacts_on_stdin_and_segcli_env(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=COMMAND)
    write_contacts(tmp_path, mqls=[4, 2])
    r = cli(tmp_path, "run", "--as-of", "2026-11-20", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    [call] = got(tmp_path)
    assert call["env"] == {
        "SEGCLI_SEGMENT": "mql",
        "SEGCLI_CHANGE": "entered",
        "SEGCLI_RUN_ID": out["run_id"],
        "SEGCLI_AS_OF": "2026-11-19T23:00:00+00:00",
    }
    rows = [json.loads(x) for x in str(call["stdin"]).splitlines()]
    assert [r["contact_id"] for r in rows] == [2, 4]
    assert rows[0]["reason"] == "matched" and rows[0]["email"] == "p2@example.com"
    assert rows[0]["signed_up"] == "2026-03-15"


def test_failed_command_stays_pending_exit_5_then_deliver(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=COMMAND)
    write_contacts(tmp_path, mqls=[1])
    (tmp_path / "fail").write_text("")
    r = cli(tmp_path, "run", "--as-of", "2026-11-20")
    assert r.exit_code == 5, r.output
    assert "committed, but 1 delivery is pending" in r.stderr
    assert "mql.entered.0 of run" in r.stderr and "exited 3" in r.stderr
    assert "Traceback" not in r.output
    # The run is committed all the same.
    assert len(api.load(tmp_path / "segments.yaml").state().read_manifest().runs) == 1
    listed = cli(tmp_path, "deliver", "--list")
    assert listed.exit_code == 0
    assert "pending mql.entered.0" in listed.stdout and "exited 3" in listed.stdout
    assert cli(tmp_path, "deliver").exit_code == 5  # still failing
    (tmp_path / "fail").unlink()
    r = cli(tmp_path, "deliver")
    assert r.exit_code == 0, r.output
    assert "delivered mql.entered.0" in r.stdout
    assert len(got(tmp_path)) == 1
    again = cli(tmp_path, "deliver")  # a done batch is never sent again
    assert again.exit_code == 0 and "nothing pending" in again.stdout
    assert len(got(tmp_path)) == 1


def test_next_run_retries_pending_deliveries(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=COMMAND)
    write_contacts(tmp_path, mqls=[1])
    (tmp_path / "fail").write_text("")
    assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 5
    (tmp_path / "fail").unlink()
    write_contacts(tmp_path, mqls=[1, 2])
    r = cli(tmp_path, "run", "--as-of", "2026-11-21", "--json")
    assert r.exit_code == 0, r.output
    calls = got(tmp_path)
    assert [json.loads(str(c["stdin"]).splitlines()[0])["contact_id"] for c in calls] == [1, 2]
    assert json.loads(r.stdout)["pending"] == []


def test_no_actions_commits_and_leaves_pending(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=EXPORT)
    write_contacts(tmp_path, mqls=[1])
    r = cli(tmp_path, "run", "--as-of", "2026-11-20", "--no-actions")
    assert r.exit_code == 5
    assert "mql.entered.0 of run" in r.stderr and "not attempted yet" in r.stderr
    assert not (tmp_path / "exports").exists()
    assert (tmp_path / "out" / "segments" / "mql.parquet").exists()
    r = cli(tmp_path, "deliver", "--segment", "mql")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "exports" / "mql-entered-2026-11-20.csv").exists()


def test_dry_run_shows_deliveries_and_sends_nothing(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=EXPORT[:-1] + ", " + COMMAND[1:])
    write_contacts(tmp_path, mqls=[1, 2])
    r = cli(tmp_path, "run", "--as-of", "2026-11-20", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would deliver mql.entered.0: export to" in r.stdout
    assert "mql-entered-2026-11-20.csv (2 contacts, 1 batch); nothing sent" in r.stdout
    assert "would deliver mql.entered.1: command to" in r.stdout
    assert not (tmp_path / "exports").exists() and got(tmp_path) == []
    assert not (tmp_path / ".segcli" / "outbox").exists()


def test_nothing_changed_nothing_delivered(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=COMMAND)
    write_contacts(tmp_path, mqls=[1])
    assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 0
    assert cli(tmp_path, "run", "--as-of", "2026-11-21").exit_code == 0
    assert len(got(tmp_path)) == 1


def test_changing_actions_is_not_a_definition_change(tmp_path: Path) -> None:
    write_spec(tmp_path)
    write_contacts(tmp_path, mqls=[1])
    assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 0
    write_spec(tmp_path, on_enter=COMMAND)
    r = cli(tmp_path, "run", "--as-of", "2026-11-21")
    assert r.exit_code == 0
    assert "changed" not in r.stderr


def test_command_timeout_and_missing_program(tmp_path: Path) -> None:
    slow = f"[{{command: {{argv: [{PY}, -c, 'import time; time.sleep(30)'], timeout: 300ms}}}}, {{command: [no-such-program-xyz]}}]"  # noqa: E501
    write_spec(tmp_path, on_enter=slow)
    write_contacts(tmp_path, mqls=[1])
    r = cli(tmp_path, "run", "--as-of", "2026-11-20")
    assert r.exit_code == 5
    assert "timed out after 0.3 s" in r.stderr
    assert "could not start" in r.stderr and "2 deliveries are pending" in r.stderr


def test_pending_deliveries_keep_their_run_past_keep_runs(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=COMMAND, extra="state: {keep_runs: 1}\n")
    write_contacts(tmp_path, mqls=[1])
    (tmp_path / "fail").write_text("")
    assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 5
    for day, mqls in ((21, [1, 2]), (22, [1, 2, 3])):
        write_contacts(tmp_path, mqls=mqls)
        assert cli(tmp_path, "run", "--as-of", f"2026-11-{day}").exit_code == 5
    state = tmp_path / ".segcli"
    runs = api.load(tmp_path / "segments.yaml").state().read_manifest().runs
    assert len(runs) == 3  # all held: each has a pending delivery
    (tmp_path / "fail").unlink()
    assert cli(tmp_path, "deliver").exit_code == 0
    assert len(got(tmp_path)) == 3
    write_contacts(tmp_path, mqls=[1, 2, 3, 4])
    assert cli(tmp_path, "run", "--as-of", "2026-11-23").exit_code == 0
    runs = api.load(tmp_path / "segments.yaml").state().read_manifest().runs
    assert len(runs) == 1  # delivered: pruned again, with their outbox folders
    assert sorted(p.name for p in (state / "outbox").iterdir()) == [runs[0]["run_id"]]


def test_a_killed_runs_outbox_folder_is_removed(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=COMMAND)
    write_contacts(tmp_path, mqls=[1])
    assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 0
    stray = tmp_path / ".segcli" / "outbox" / "deadbeef0000"
    stray.mkdir(parents=True)
    (stray / "mql.entered.parquet").write_bytes(b"x")
    mine = tmp_path / ".segcli" / "outbox" / "notes"  # not named like a run: not segcli's
    mine.mkdir()
    write_contacts(tmp_path, mqls=[1, 2])
    assert cli(tmp_path, "run", "--as-of", "2026-11-21").exit_code == 0
    assert not stray.exists() and mine.exists()
    assert len(got(tmp_path)) == 2


@pytest.mark.parametrize(
    ("actions", "needle"),
    [
        ('[{export: {path: "a/{segmnt}.csv"}}]', "unknown placeholder {segmnt}"),
        ('[{export: {path: "a.xlsx"}}]', "must end in .csv, .jsonl or .parquet"),
        ('[{export: {path: "a.csv", columns: [emial]}}]', "unknown column 'emial'"),
        ('[{export: {path: "a.csv", columns: [crm.x]}}]', "unknown source 'crm'"),
        ("[{command: []}]", "command must be a non-empty list"),
        ('[{webhook: {url: "ftp://x"}}]', "must start with http:// or https://"),
        ('[{webhook: {url: "http://x", template: slak}}]', "did you mean"),
        ('[{webhook: {url: "http://x", timeout: 10}}]', "bad timeout 10"),
        ('[{webhook: {url: "http://x", batch: 0}}]', "batch must be an integer >= 1"),
        ("[{mail: {to: x}}]", "unknown key 'mail'"),
        ("{export: {path: a.csv}}", "on_enter must be a list of actions"),
    ],
)
def test_bad_actions_are_spec_errors(tmp_path: Path, actions: str, needle: str) -> None:
    write_spec(tmp_path, on_enter=actions)
    write_contacts(tmp_path, mqls=[1])
    r = cli(tmp_path, "validate")
    assert r.exit_code == 2, r.output
    assert needle in r.stderr
    assert "segments.yaml:" in r.stderr


def test_outbox_is_in_the_commit(tmp_path: Path) -> None:
    write_spec(tmp_path, on_enter=EXPORT)
    write_contacts(tmp_path, mqls=[1, 2])
    assert cli(tmp_path, "run", "--as-of", "2026-11-20", "--no-actions").exit_code == 5
    project = api.load(tmp_path / "segments.yaml")
    [run] = project.state().read_manifest().runs
    [rec] = run["deliveries"]
    assert rec["id"] == "mql.entered.0" and rec["contacts"] == 2 and rec["batches"] == 1
    [d] = outbox.deliveries([run])
    payload = outbox.read_payload(tmp_path / ".segcli", d)
    assert payload["contact_id"].to_list() == [1, 2]


def test_demo_hands_off_its_mqls_without_the_network(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    script = "scripts/notify_sales.py"
    template = root / "segcli" / "templates" / "notify_sales.py.txt"
    assert (root / "sample_data" / script).read_text() == template.read_text()
    r = cli(tmp_path, "init", str(tmp_path / "p"))
    assert r.exit_code == 0, r.output
    r = cli(tmp_path / "p", "run", "--as-of", "2026-11-20")
    assert r.exit_code == 0, r.output
    export = (tmp_path / "p" / "exports" / "mql-2026-11-20.csv").read_text().splitlines()
    assert export[0] == "contact_id,email,first_name,last_name,owner,lifecycle_stage"
    assert len(export) > 10
    inbox = (tmp_path / "p" / "exports" / "sales-inbox.txt").read_text()
    assert f"{len(export) - 1} contacts entered mql" in inbox


def test_two_webhooks_on_one_change_have_distinct_idempotency_keys(tmp_path: Path) -> None:
    hooks = (
        '[{webhook: {url: "http://127.0.0.1:9/a"}}, {export: {path: "x.csv"}}, '
        '{webhook: {url: "http://127.0.0.1:9/b"}}]'
    )
    write_spec(tmp_path, on_enter=hooks)
    write_contacts(tmp_path, mqls=[1, 3])
    project = api.load(tmp_path / "segments.yaml")
    changes = {"mql": pl.DataFrame({"contact_id": [1, 3], "change": ["entered", "entered"]})}
    owed = outbox.plan(
        "abcdef012345", "2026-11-20T00:00:00+00:00", "2026-11-20", project.spec, changes
    )
    webhooks = [d for d in owed if d.kind == "webhook"]
    assert len(webhooks) == 2
    # The first keeps SPEC §2.9's form; the second is told apart, so keys are unique per batch.
    assert webhooks[0].key(1) == "abcdef012345:mql:entered:1"
    assert webhooks[1].key(1) == "abcdef012345:mql:entered:1#2"
    keys = {d.key(b) for d in webhooks for b in range(1, d.batches + 1)}
    assert len(keys) == sum(d.batches for d in webhooks)
