"""The fingerprint covers everything that can change a result (SPEC §3.2): the spec, every
rules_file and the list files. An edit to any of them is announced by the next run."""

from __future__ import annotations

import json
from pathlib import Path

from segcli import api
from tests.test_state import click, contact, make_project, write_csv, write_export

SPEC = """\
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.csv, key: contact_id}
  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}
scoring:
  engagement:
    rules_file:
      path: assets.csv
      when: {event: {source: email, type: "{asset}"}}
segments:
  mql: {kind: semi_dynamic, where: {score: {model: engagement, gte: 10}}}
  us: {where: {field: country, eq: US}, include_file: lists/vip.csv}
  plain: {where: {field: title, starts_with: VP}}
"""


def project(root: Path) -> Path:
    cfg = make_project(root, SPEC)
    write_export(
        root,
        [contact(1, "VP Sales"), contact(2, country="DE"), contact(3, country="FR")],
        [click(2, "2026-02-20T10:00:00", "download"), click(3, "2026-02-21T10:00:00")],
        {"vip": [3]},
    )
    write_csv(root / "assets.csv", ["asset", "points"], [{"asset": "download", "points": 10}])
    return cfg


def notes(cfg: Path, as_of: str) -> list[str]:
    return api.run(api.load(cfg), as_of=as_of).warnings


def test_editing_a_rules_file_is_announced(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    assert notes(cfg, "2026-03-01") == []
    fp1 = json.loads((tmp_path / "out" / "run.json").read_text())["spec_fingerprint"]
    assert notes(cfg, "2026-03-02") == []  # nothing changed, nothing said
    # The asset spreadsheet gains a row: clicks are now worth 10 points too.
    write_csv(tmp_path / "assets.csv", ["asset", "points"],
              [{"asset": "download", "points": 10}, {"asset": "click", "points": 10}])  # fmt: skip
    said = notes(cfg, "2026-03-03")
    assert said == [
        "the definition of segment 'mql' changed since the last run; its members are kept "
        "(--refresh mql recomputes it)"
    ]
    fp2 = json.loads((tmp_path / "out" / "run.json").read_text())["spec_fingerprint"]
    assert fp2 != fp1
    assert notes(cfg, "2026-03-04") == []  # announced once


def test_editing_a_list_file_is_announced(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    notes(cfg, "2026-03-01")
    fp1 = api.load(cfg).fingerprint
    write_csv(tmp_path / "lists" / "vip.csv", ["contact_id"], [{"contact_id": 2}])
    assert notes(cfg, "2026-03-02") == ["the definition of segment 'us' changed since the last run"]
    assert api.load(cfg).fingerprint != fp1
