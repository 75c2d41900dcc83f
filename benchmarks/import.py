"""Import throughput: 1,000,000 completions per format → validated SampleTable parquet (≤ 10 s target).

Run: ``python benchmarks/import.py [--rows 1000000] [--formats openai-batch,generic,search-and-learn,lm-eval]``.

For each format a synthetic file in that format's real layout is generated first (not timed), then
``ttsplan.features.importers.import_to_parquet`` runs end to end (read, explode, answer extraction, grading
against gold, validation, atomic parquet write with provenance) and the wall time and rows/s are
printed with the ratio to the 10 s target, the process CPU seconds (all threads) and the
1-minute load average when the import started (on a shared machine the wall time depends on the
load). Texts: 70 % end in ``\\boxed{N}``, 30 % in "The answer is N." (each text distinct; both
shapes take the polars fast paths of ``ttsplan.features.importers.base.extract_answers``); answers agree
with gold about half the time. ``--logprobs`` adds 16 per-token logprobs to every choice of
the batch file (a much larger file).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttsplan.features.importers import import_to_parquet

TARGET_S = 10.0


def _texts(n: int, answers: np.ndarray, rng: np.random.Generator) -> pl.Series:
    idx = pl.Series(np.arange(n)).cast(pl.String)
    ans = pl.Series(answers).cast(pl.String)
    boxed = pl.Series(rng.random(n) < 0.7)
    df = pl.DataFrame({"i": idx, "a": ans, "b": boxed})
    return df.select(pl.when(pl.col("b"))
                     .then(pl.lit("Step 1: compute the sum of the terms (run ") + pl.col("i")
                           + pl.lit("). Therefore, the final answer is: $\\boxed{") + pl.col("a") + pl.lit("}$."))
                     .otherwise(pl.lit("We add the numbers carefully (run ") + pl.col("i")
                                + pl.lit("). The answer is ") + pl.col("a") + pl.lit("."))).to_series()


def _data(rows: int, per: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    prompts = rows // per
    gold = rng.integers(0, 1000, prompts)
    pid = np.repeat(np.arange(prompts), per)
    right = rng.random(prompts * per) < 0.5
    ans = np.where(right, gold[pid], gold[pid] + rng.integers(1, 5, prompts * per))
    samples = pl.DataFrame({"pid": pl.Series(pid).cast(pl.String).str.zfill(7), "j": np.tile(np.arange(per), prompts),
                            "text": _texts(prompts * per, ans, rng), "tokens": rng.integers(20, 400, prompts * per),
                            "score": rng.random(prompts * per)})
    golds = pl.DataFrame({"pid": pl.Series(np.arange(prompts)).cast(pl.String).str.zfill(7),
                          "gold": pl.Series(gold).cast(pl.String)})
    return samples, golds


def make_openai_batch(d: Path, rows: int, logprobs: bool) -> tuple[list[Path], dict]:
    per = 8
    s, g = _data(rows, per)
    choice = pl.struct(pl.col("j").alias("index"),
                       pl.struct(pl.lit("assistant").alias("role"), pl.col("text").alias("content")).alias("message"),
                       (pl.struct(pl.concat_list([pl.struct(pl.lit("x").alias("token"),
                                                            (-pl.col("score")).alias("logprob"))] * 16).alias("content"))
                        if logprobs else pl.lit(None)).alias("logprobs"),
                       pl.lit("stop").alias("finish_reason"))
    per_req = (s.with_columns(choice.alias("choice")).group_by("pid", maintain_order=True)
               .agg(pl.col("choice"), pl.col("tokens").sum().alias("ct")))
    out = per_req.select(
        pl.lit("batch_req_x").alias("id"), (pl.lit("bench/T0.7::") + pl.col("pid")).alias("custom_id"),
        pl.struct(pl.lit(200).alias("status_code"), pl.lit("req").alias("request_id"),
                  pl.struct(pl.lit("chatcmpl-x").alias("id"), pl.lit("chat.completion").alias("object"),
                            pl.lit("bench-model").alias("model"), pl.col("choice").alias("choices"),
                            pl.struct(pl.lit(50).alias("prompt_tokens"), pl.col("ct").alias("completion_tokens"),
                                      (pl.col("ct") + 50).alias("total_tokens")).alias("usage")).alias("body"))
        .alias("response"), pl.lit(None, pl.String).alias("error"))
    f = d / "responses.jsonl"
    out.write_ndjson(f)
    g.select(pl.col("pid").alias("id"), pl.lit("?").alias("prompt"), pl.col("gold").alias("answer")).write_ndjson(
        d / "prompts.jsonl")
    return [f], {"prompts": d / "prompts.jsonl"}


def make_generic(d: Path, rows: int) -> tuple[list[Path], dict]:
    s, g = _data(rows, 16)
    f = d / "runs.parquet"
    s.join(g, on="pid").select(pl.col("pid").alias("doc_id"), pl.col("text").alias("completion"), "gold",
                               pl.col("tokens").alias("n_tokens")).write_parquet(f)
    return [f], {"mapping": {"prompt_id": "doc_id", "text": "completion", "gold": "gold",
                             "output_tokens": "n_tokens"}, "config": "bench"}


def make_sal(d: Path, rows: int) -> tuple[list[Path], dict]:
    s, g = _data(rows, 16)
    steps = pl.concat_list([pl.col("score"), pl.col("score") * 0.9, pl.col("score") * 0.8, pl.col("score") * 0.7])
    per = (s.with_columns(steps.alias("scores")).group_by("pid", maintain_order=True)
           .agg(pl.col("text").alias("completions"), pl.col("scores"), pl.col("tokens").alias("completion_tokens"))
           .join(g, on="pid", maintain_order="left")
           .select(pl.lit("What is x?").alias("problem"), pl.col("gold").alias("answer"), pl.col("pid").alias("unique_id"),
                   "completions", "scores", "completion_tokens", pl.col("completions").list.first().alias("pred")))
    f = d / "best_of_n_completions.jsonl"
    per.write_ndjson(f)
    return [f], {"reward_agg": "last"}


def make_lm_eval(d: Path, rows: int) -> tuple[list[Path], dict]:
    per = 64
    s, g = _data(rows, per)
    per_doc = s.group_by("pid", maintain_order=True).agg(pl.col("text")).join(g, on="pid", maintain_order="left")
    f = d / "samples_bench_2024-01-01T00-00-00.jsonl"
    with open(f, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"doc_id": int(pid), "doc": {"question": "q"}, "target": gold,
                                 "arguments": {"gen_args_0": {"arg_0": "Q:", "arg_1": {"until": ["Q:"]}}},
                                 "resps": [texts], "filtered_resps": [texts[0]], "filter": "score-first",
                                 "metrics": ["exact_match"], "exact_match": 0.0}) + "\n" for pid, texts, gold in per_doc.iter_rows())
    return [f], {}


MAKERS = {"openai-batch": make_openai_batch, "generic": make_generic, "search-and-learn": make_sal,
          "lm-eval": make_lm_eval}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--formats", default=",".join(MAKERS))
    ap.add_argument("--logprobs", action="store_true", help="per-token logprobs in the batch file")
    args = ap.parse_args()
    print(f"cores visible: {os.cpu_count()}, polars threads: {pl.thread_pool_size()}, rows: {args.rows:,}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            d = Path(tmp) / fmt
            d.mkdir()
            t0 = time.perf_counter()
            files, opts = (make_openai_batch(d, args.rows, args.logprobs) if fmt == "openai-batch"
                           else MAKERS[fmt](d, args.rows))
            gen = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in files)
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            r = import_to_parquet(fmt, files, d / "out.parquet", **opts)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            acc = r.table["correct"].cast(pl.Float64).mean()
            print(f"{fmt:17s} {r.table.height:>9,} rows  {size / 1e6:7.1f} MB  import {dt:6.2f} s wall "
                  f"({cpu:5.2f} CPU-s, load {load:.1f})  {r.table.height / dt:>10,.0f} rows/s  "
                  f"({dt / TARGET_S:.2f}× the 10 s target; generate {gen:.1f} s; accuracy {acc:.3f})", flush=True)


if __name__ == "__main__":
    main()
