"""Where a run's outputs are (the manifest's run record and run.json), and output safety.

Views read the last committed run's files through this record, not whatever is in `out/`.
"""

from __future__ import annotations

import json
from pathlib import Path

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
