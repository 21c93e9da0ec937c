"""Where a run's outputs are (the manifest's run record and run.json), and output safety.

Views read the last committed run's files through this record, not whatever is in `out/`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segcli.outputs.files import committed_file
from tests.test_state import cli, run, small_project


def test_run_record_names_out_dir_format_and_files(tmp_path: Path) -> None:
    cfg = small_project(tmp_path)
    run(cfg, "2026-03-01")
    elsewhere = tmp_path / "elsewhere"
    res = cli("run", "-c", str(cfg), "--as-of", "2026-03-02", "--format", "csv",
              "--out", str(elsewhere), "--segment", "vp_dyn")  # fmt: skip
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / ".segcli" / "manifest.json").read_text())
    first, second = manifest["runs"]
    assert first["out_dir"] == str((tmp_path / "out").resolve())
    assert first["format"] == "parquet"
    names = ("vp_dyn", "vp_semi", "vp_static", "clickers", "clickers_semi")
    assert first["files"] == sorted(
        ["run.json"]
        + [f"segments/{n}.parquet" for n in names]
        + [f"changes/{n}.parquet" for n in names]
    )
    assert second["out_dir"] == str(elsewhere.resolve())
    assert second["format"] == "csv"
    assert second["files"] == ["changes/vp_dyn.csv", "run.json", "segments/vp_dyn.csv"]
    for rec, out in ((first, tmp_path / "out"), (second, elsewhere)):
        body = json.loads((out / "run.json").read_text())
        assert body["run_id"] == rec["run_id"]
        assert {k: body[k] for k in ("out_dir", "format", "files")} == {
            k: rec[k] for k in ("out_dir", "format", "files")
        }
        assert all((out / f).is_file() for f in rec["files"])


def test_killed_between_commit_and_move_is_finished_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = small_project(tmp_path)
    out = tmp_path / "out"
    first = run(cfg, "2026-03-01")
    old = (out / "run.json").read_bytes()

    def killed(*args: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr("segcli.api.publish", killed)
    with pytest.raises(RuntimeError):
        run(cfg, "2026-03-02")
    monkeypatch.undo()
    manifest = json.loads((tmp_path / ".segcli" / "manifest.json").read_text())
    rec = manifest["runs"][-1]
    assert rec["run_id"] != first.run_id  # committed
    assert (out / "run.json").read_bytes() == old  # not yet moved into place
    staged = committed_file(out, rec["run_id"], "run.json")
    assert json.loads(staged.read_text())["run_id"] == rec["run_id"]
    semi = committed_file(out, rec["run_id"], "segments/vp_semi.parquet").read_bytes()
    # A failed run does not undo that commit, and the next run finishes the move first.
    third = run(cfg, "2026-03-03", segments=["vp_dyn"])
    assert json.loads((out / "run.json").read_text())["run_id"] == third.run_id
    assert committed_file(out, rec["run_id"], "segments/vp_semi.parquet") == (
        out / "segments" / "vp_semi.parquet"
    )
    assert (out / "segments" / "vp_semi.parquet").read_bytes() == semi
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".segcli-out"]
