"""Table contracts: every problem reported at once; readers for parquet, JSONL, CSV and shard dirs."""
from __future__ import annotations

import json

import polars as pl
import pytest

from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.features.io import read_counts, read_metadata, read_samples, read_table, to_counts, write_parquet_atomic
from ttsplan.features.schema import SAMPLE_SCHEMA, table_kind, validate_count_table, validate_sample_table


def good_rows(n_prompts=2, k=3):
    return [{"config": "m/T0.7", "model": "m", "dataset": "d", "prompt_id": f"p{p}", "sample_idx": i,
             "answer": str(i % 2), "correct": i % 2 == 0, "output_tokens": 5 + i}
            for p in range(n_prompts) for i in range(k)]


def test_valid_table_gets_every_column_sorted():
    df = pl.DataFrame(good_rows()[::-1])
    out = validate_sample_table(df)
    assert out.columns == list(SAMPLE_SCHEMA)
    assert out["sample_idx"].dtype == pl.Int32 and out["reward"].null_count() == out.height
    assert out["prompt_id"].to_list() == sorted(out["prompt_id"].to_list())


def test_every_problem_reported_in_one_error():
    df = pl.DataFrame({
        "config": ["a", "a", "a", "a"], "promt_id": ["x", "x", "y", "y"], "sample_idx": [0, 0, 1, 5],
        "output_tokens": [1, -2, 3, 4], "reward": [1.0, float("nan"), 2.0, float("inf")], "extra": [1, 2, 3, 4],
    })
    with pytest.raises(SchemaError) as err:
        validate_sample_table(df)
    text = str(err.value)
    assert 'column "prompt_id"' in text and 'Did you mean "prompt_id"' in text
    assert '"extra" (unexpected)' in text
    assert "output_tokens" in text and "negative" in text
    assert "reward" in text and "non-finite" in text
    assert len(err.value.problems) == 5  # missing, 2 unexpected, negative, non-finite


def test_duplicates_and_gaps_and_types():
    rows = good_rows(1, 3)
    rows.append(dict(rows[0]))                              # duplicate key
    rows.append({**rows[0], "prompt_id": "q", "sample_idx": 2})  # gap: q has only sample 2
    df = pl.DataFrame(rows)
    with pytest.raises(SchemaError) as err:
        validate_sample_table(df)
    assert "must be unique" in str(err.value)
    df = pl.DataFrame(good_rows(1, 2)).with_columns(pl.Series("sample_idx", ["0", "one"]))
    with pytest.raises(SchemaError, match="sample_idx.*Int32.*'one'"):
        validate_sample_table(df)
    rows = good_rows(1, 3)
    rows[2]["sample_idx"] = 7
    with pytest.raises(SchemaError, match="without gaps"):
        validate_sample_table(pl.DataFrame(rows))


def test_count_table_checks():
    df = pl.DataFrame({"config": ["a", "a"], "prompt_id": ["x", "y"], "samples": [10, 0], "correct_samples": [11, 0]})
    with pytest.raises(SchemaError) as err:
        validate_count_table(df)
    assert "correct_samples must be <= samples" in str(err.value) and "samples must be >= 1" in str(err.value)
    with pytest.raises(SchemaError, match="at least one row"):
        validate_count_table(df.clear())


def test_readers_and_shards(tmp_path):
    df = pl.DataFrame(good_rows(4, 3))
    df.write_parquet(tmp_path / "a.parquet")
    df.write_ndjson(tmp_path / "a.jsonl")
    df.write_csv(tmp_path / "a.csv")
    shards = tmp_path / "shards"
    shards.mkdir()
    df.slice(0, 6).write_parquet(shards / "part-0.parquet")
    df.slice(6).write_parquet(shards / "part-1.parquet")
    ref = validate_sample_table(df)
    for path in ("a.parquet", "a.jsonl", "a.csv", "shards"):
        assert read_samples(tmp_path / path).equals(ref), path
    counts = to_counts(ref)
    assert counts["samples"].to_list() == [3] * 4 and counts["correct_samples"].to_list() == [2] * 4
    assert read_counts(tmp_path / "a.parquet").equals(counts)
    counts.write_parquet(tmp_path / "c.parquet")
    assert read_table(tmp_path / "c.parquet")[1] == "counts"


def test_read_errors_listed_together(tmp_path):
    (tmp_path / "bad.parquet").write_text("not parquet")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(TtsplanError) as err:
        read_table([tmp_path / "bad.parquet", tmp_path / "empty.jsonl", tmp_path / "x.txt", tmp_path / "missing.csv"])
    text = str(err.value)
    for name in ("bad.parquet", "empty.jsonl", "x.txt", "missing.csv"):
        assert name in text


def test_atomic_parquet_with_metadata(tmp_path):
    path = tmp_path / "out" / "t.parquet"
    write_parquet_atomic(pl.DataFrame(good_rows()), path, metadata={"seed": 3})
    assert read_metadata(path) == {"seed": 3}
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]


def test_config_names_shared_across_datasets_are_split():
    rows = [{**r, "dataset": ds, "prompt_id": f"{ds}-{r['prompt_id']}"} for ds in ("addsub", "aqua") for r in good_rows(1, 2)]
    out = validate_sample_table(pl.DataFrame(rows))
    assert sorted(out["config"].unique().to_list()) == ["m/T0.7 [addsub]", "m/T0.7 [aqua]"]
    single = validate_sample_table(pl.DataFrame(good_rows(1, 2)))
    assert single["config"].unique().to_list() == ["m/T0.7"]


# -- tables that meet users where they are (issue 19) ---------------------------------------------------
def test_extra_columns_are_dropped_with_one_note():
    from ttsplan.features.schema import ExtraColumnsWarning

    df = pl.DataFrame(good_rows()).with_columns(pl.lit("r1").alias("run_id"), pl.lit("linux").alias("platform"))
    with pytest.warns(ExtraColumnsWarning, match=r"dropped 2 column\(s\) outside the contract \(run_id, platform\)"):
        out = validate_sample_table(df)
    assert out.equals(validate_sample_table(pl.DataFrame(good_rows())))
    counts = to_counts(validate_sample_table(pl.DataFrame(good_rows()))).with_columns(pl.lit(7).alias("run_id"))
    with pytest.warns(ExtraColumnsWarning, match="run_id"):
        assert validate_count_table(counts).columns == validate_count_table(counts.drop("run_id")).columns


def test_a_misspelled_contract_column_is_still_an_error():
    """Dropping ``corect`` would silently unlabel the table: it is refused with the likely name."""
    df = pl.DataFrame(good_rows()).rename({"correct": "corect"})
    with pytest.raises(SchemaError, match='"corect" \\(unexpected\\). Did you mean "correct"'):
        validate_sample_table(df)


def test_a_text_difficulty_is_a_label():
    df = pl.DataFrame({"config": ["c"] * 3, "prompt_id": ["a", "b", "c"], "samples": [4, 4, 4],
                       "correct_samples": [4, 2, 0], "difficulty": ["easy", "medium", "hard"]})
    out = validate_count_table(df)
    assert out["difficulty_label"].to_list() == ["easy", "medium", "hard"]
    assert out["difficulty"].null_count() == 3
    numeric = validate_count_table(df.with_columns(pl.Series("difficulty", ["0.1", "0.5", None])))
    assert numeric["difficulty"].to_list() == [0.1, 0.5, None] and numeric["difficulty_label"].null_count() == 3


def test_cli_prints_the_note_as_one_line_and_works(tmp_path):
    from typer.testing import CliRunner

    from ttsplan.cli.main import app

    path = tmp_path / "t.parquet"
    pl.DataFrame(good_rows()).with_columns(pl.lit("r1").alias("run_id")).write_parquet(path)
    res = CliRunner().invoke(app, ["curves", str(path), "--bootstrap", "0", "--format", "json"])
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("warning: ") and "run_id" in notes[0], res.stderr
    assert json.loads(res.stdout)


def test_table_kind_matches_read_table(tmp_path):
    """table_kind asks a validated table the kind read_table detected when it read it."""
    samples = pl.DataFrame({"config": ["c", "c"], "prompt_id": ["p", "p"], "sample_idx": [0, 1],
                            "correct": [True, False]})
    samples.write_parquet(tmp_path / "s.parquet")
    to_counts(validate_sample_table(samples)).write_parquet(tmp_path / "c.parquet")
    for name, want in (("s.parquet", "samples"), ("c.parquet", "counts")):
        table, kind = read_table(tmp_path / name)
        assert kind == want
        assert table_kind(table) == want
    assert table_kind(to_counts(validate_sample_table(samples))) == "counts"
