"""Webhooks (SPEC §2.9) against a real HTTP server on 127.0.0.1: batches, Idempotency-Key,
signatures, the Slack template, retries and their limits, and that the endpoint never
changes or holds up the run's commit."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from segcli.outputs import webhook
from tests.actions_project import cli, write_contacts, write_spec
from tests.actions_server import Behaviour, Endpoint


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook, "BACKOFF", 0.05)


def hook(url: str, extra: str = "") -> str:
    return f'[{{webhook: {{url: "{url}", columns: [email]{extra}}}}}]'


def run_id(root: Path) -> str:
    return str(json.loads((root / "out" / "run.json").read_text())["run_id"])


def test_batches_keys_and_signatures(tmp_path: Path) -> None:
    with Endpoint(Behaviour(secret="s3cret")) as ep:
        write_spec(tmp_path, on_enter=hook(ep.url, ", batch: 10, secret_env: MQL_SECRET"))
        write_contacts(tmp_path, mqls=range(1, 24), n=25)
        r = cli(tmp_path, "run", "--as-of", "2026-11-20", env={"MQL_SECRET": "s3cret"})
        assert r.exit_code == 0, r.output
    rid = run_id(tmp_path)
    assert [q.key for q in ep.received] == [f"{rid}:mql:entered:{i}" for i in (1, 2, 3)]
    assert all(q.signature_ok for q in ep.received)
    bodies = [q.json for q in ep.received]
    assert [len(b["contacts"]) for b in bodies] == [10, 10, 3]
    assert [(b["batch"], b["batches"]) for b in bodies] == [(1, 3), (2, 3), (3, 3)]
    first = bodies[0]
    assert (first["segment"], first["change"], first["run_id"]) == ("mql", "entered", rid)
    assert first["as_of"] == "2026-11-19T23:00:00+00:00"
    assert first["contacts"][0] == {"contact_id": 1, "email": "p1@example.com", "reason": "matched"}
    keys = [c["contact_id"] for b in bodies for c in b["contacts"]]
    assert keys == list(range(1, 24))


def test_a_wrong_secret_is_refused_and_stays_pending(tmp_path: Path) -> None:
    with Endpoint(Behaviour(secret="right")) as ep:
        write_spec(tmp_path, on_enter=hook(ep.url, ", secret_env: MQL_SECRET"))
        write_contacts(tmp_path, mqls=[1])
        r = cli(tmp_path, "run", "--as-of", "2026-11-20", env={"MQL_SECRET": "wrong"})
        assert r.exit_code == 5
        assert "HTTP 401" in r.stderr and "not retried" in r.stderr
        assert len(ep.received) == 1 and ep.received[0].signature_ok is False


def test_missing_secret_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MQL_SECRET", raising=False)
    with Endpoint() as ep:
        write_spec(tmp_path, on_enter=hook(ep.url, ", secret_env: MQL_SECRET"))
        write_contacts(tmp_path, mqls=[1])
        r = cli(tmp_path, "run", "--as-of", "2026-11-20")
        assert r.exit_code == 5
        assert "environment variable MQL_SECRET (secret_env) is not set" in r.stderr
        assert ep.received == []


def test_timeouts_429_and_5xx_are_retried_with_the_same_key(tmp_path: Path) -> None:
    behaviour = Behaviour(statuses=[0, 503, 429], hang_first=1, hang_seconds=1.5)
    with Endpoint(behaviour) as ep:
        write_spec(tmp_path, on_enter=hook(ep.url, ", timeout: 300ms"))
        write_contacts(tmp_path, mqls=[1])
        r = cli(tmp_path, "run", "--as-of", "2026-11-20")
        # 3 attempts in all within the run: timeout, 503, 429 -> still pending.
        assert r.exit_code == 5, r.output
        assert "HTTP 429" in r.stderr and "(3 attempts)" in r.stderr
        assert len(ep.received) == 3
        r = cli(tmp_path, "deliver")  # the next try succeeds
        assert r.exit_code == 0, r.output
    keys = {q.key for q in ep.received}
    assert len(ep.received) == 4 and keys == {f"{run_id(tmp_path)}:mql:entered:1"}


def test_a_timeout_then_success_within_one_run(tmp_path: Path) -> None:
    with Endpoint(Behaviour(hang_first=1, hang_seconds=1.5)) as ep:
        write_spec(tmp_path, on_enter=hook(ep.url, ", timeout: 300ms"))
        write_contacts(tmp_path, mqls=[1])
        r = cli(tmp_path, "run", "--as-of", "2026-11-20")
        assert r.exit_code == 0, r.output
        assert len(ep.received) == 2 and ep.received[0].key == ep.received[1].key


@pytest.mark.parametrize("status", [400, 404, 410])
def test_other_4xx_fail_at_once(tmp_path: Path, status: int) -> None:
    with Endpoint(Behaviour(statuses=[status])) as ep:
        write_spec(tmp_path, on_enter=hook(ep.url))
        write_contacts(tmp_path, mqls=[1])
        r = cli(tmp_path, "run", "--as-of", "2026-11-20")
        assert r.exit_code == 5
        assert len(ep.received) == 1  # not retried
        listed = cli(tmp_path, "deliver", "--list")
        assert f"HTTP {status}" in listed.stdout and "0/1 batches sent" in listed.stdout


def test_a_failed_batch_waits_and_done_batches_are_never_resent(tmp_path: Path) -> None:
    with Endpoint(Behaviour(statuses=[200, 400])) as ep:
        write_spec(tmp_path, on_enter=hook(ep.url, ", batch: 2"))
        write_contacts(tmp_path, mqls=range(1, 6))
        assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 5
        assert [q.json["batch"] for q in ep.received] == [1, 2]  # batch 3 waits
        assert "1/3 batches sent" in cli(tmp_path, "deliver", "--list").stdout
        assert cli(tmp_path, "deliver").exit_code == 0
        assert cli(tmp_path, "deliver").exit_code == 0
    assert [q.json["batch"] for q in ep.received] == [1, 2, 2, 3]


def test_slack_template_is_one_summary_message(tmp_path: Path) -> None:
    with Endpoint() as ep:
        action = f'[{{webhook: {{url: "{ep.url}", template: slack, columns: [email]}}}}]'
        write_spec(tmp_path, on_leave=action)
        write_contacts(tmp_path, mqls=range(1, 15), n=15)
        assert cli(tmp_path, "run", "--as-of", "2026-11-20").exit_code == 0
        write_contacts(tmp_path, mqls=[], n=15)
        assert cli(tmp_path, "run", "--as-of", "2026-11-21").exit_code == 0
    [q] = ep.received
    body = q.json
    assert list(body) == ["text"]
    lines = body["text"].splitlines()
    assert lines[0].startswith("segcli: 14 contacts left segment *mql* (run ")
    assert lines[1] == "• 1 · p1@example.com · unmatched"
    assert len(lines) == 12 and lines[-1] == "… and 4 more"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_endpoint_never_changes_or_holds_up_the_run(tmp_path: Path) -> None:
    """Down, refusing or slow: the same memberships, changes and commit; the manifest is
    written before the first request arrives."""
    outcomes = {}
    for case in ("none", "down", "slow"):
        root = tmp_path / case
        root.mkdir()
        with Endpoint(Behaviour(hang_first=3, hang_seconds=1.0)) as ep:
            url = {"none": "", "down": f"http://127.0.0.1:{free_port()}/x", "slow": ep.url}[case]
            write_spec(root, on_enter=hook(url, ", timeout: 200ms") if url else "")
            write_contacts(root, mqls=[1, 2, 5])
            r = cli(root, "run", "--as-of", "2026-11-20")
            assert r.exit_code == (0 if case == "none" else 5), r.output
            if case == "slow":
                manifest = root / ".segcli" / "manifest.json"
                assert ep.received and ep.received[0].at > manifest.stat().st_mtime
        segs = {p.name: p.read_bytes() for p in sorted((root / "out" / "segments").iterdir())}
        changes = {p.name: p.read_bytes() for p in sorted((root / "out" / "changes").iterdir())}
        outcomes[case] = (segs, changes)
    assert outcomes["none"] == outcomes["down"] == outcomes["slow"]
