"""Tables larger than memory: the lazy block reader gives the same table, hash and CLI output as the eager one."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import ttsplan.features.io as io
from ttsplan.cli.main import app
from ttsplan.data import DEFAULT_SAMPLES
from ttsplan.features.io import read_blocks, read_table
from ttsplan.planner.plan import table_hash

runner = CliRunner()


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """The default data as parquet shards of a few configurations each, rows in a scrambled order."""
    d = tmp_path_factory.mktemp("shards")
    t = pl.read_parquet(DEFAULT_SAMPLES).sample(fraction=1.0, shuffle=True, seed=3)
    for i, part in enumerate(t.iter_slices(t.height // 5 + 1)):
        part.write_parquet(d / f"part-{i}.parquet")
    return d


def test_blocks_concatenate_to_the_eager_table(shards: Path) -> None:
    eager, kind = read_table(shards)
    blocks = read_blocks(shards, max_rows=5000, lazy_min_rows=0)
    assert blocks.lazy and kind == blocks.kind == "samples" and len(blocks) > 2
    parts = list(blocks)
    assert all(p["config"].n_unique() >= 1 for p in parts)
    seen = [set(p["config"].unique().to_list()) for p in parts]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])   # whole configurations per block
    assert pl.concat(parts).equals(eager)
    assert blocks.hash() == table_hash(eager) == read_blocks(shards).hash()
    assert table_hash(eager) == hashlib.sha256(eager.write_csv().encode()).hexdigest()[:16]   # the whole CSV text
    assert blocks.rows == eager.height and blocks.configs == sorted(eager["config"].unique().to_list())
    assert blocks.max_samples == int(eager.group_by("config", "prompt_id").len()["len"].max())
    assert blocks.models == sorted(eager["model"].drop_nulls().unique().to_list())


def test_cli_gives_the_same_output_lazily(shards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = [["curves", str(shards), "--metric", "pass", "--metric", "maj", "--k", "1,4,16", "-f", "json"],
                ["features", str(shards), "-f", "json"],
                ["plan", str(shards), "--orders", "2", "-f", "json"],
                ["evaluate", str(shards), "--orders", "2", "-f", "json"]]
    eager = [runner.invoke(app, c) for c in commands]
    monkeypatch.setattr(io, "LAZY_MIN_ROWS", 0)
    monkeypatch.setattr(io, "BLOCK_ROWS", 5000)
    lazy = [runner.invoke(app, c) for c in commands]
    for c, a, b in zip(commands, eager, lazy):
        assert a.exit_code == 0 and b.exit_code == 0, (c, a.output, b.output)
        assert json.loads(a.stdout) == json.loads(b.stdout), c[0]
    assert "block 1/" in lazy[0].stderr and "block 1/" not in eager[0].stderr
    r = runner.invoke(app, ["curves", str(shards), "--k", "1,99"])                 # checked before any block
    assert r.exit_code == 2 and "--k must be at most 16" in r.output


def test_lazy_reader_reports_unreadable_shards(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_bytes(b"not parquet at all")
    pl.DataFrame({"config": ["c"], "prompt_id": ["p"], "sample_idx": [0], "correct": [True]}).write_parquet(
        tmp_path / "b.parquet")
    with pytest.raises(io.TtsplanError, match="could not read the input"):
        read_blocks(tmp_path, lazy_min_rows=0)
