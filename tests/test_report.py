"""``ttsplan report``: every figure exists as a real PNG, and the numbers behind each plot are the
numbers the corresponding CLI command prints (curves, plan, fit, estimate), not just "a file was written"."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

pytest.importorskip("matplotlib", reason="matplotlib (extra `plot`) is needed to draw the report")

from ttsplan.cli.main import app
from ttsplan.report import FIGURES

runner = CliRunner()
MODEL = "gemma-3-270m"
BOOT = 40


def _table(seed: int = 7) -> pl.DataFrame:
    """5 configurations × 14 prompts × 8 samples with answers, rewards and token counts; the
    configurations differ in difficulty, answer concentration and length so the features vary."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(5):
        cfg = f"toy/cfg{c}"
        for i in range(14):
            p = rng.beta(0.6 + 0.5 * c, 1.8)
            wrong_share = 0.3 + 0.12 * c
            for j in range(8):
                ok = bool(rng.random() < p)
                ans = "gold" if ok else ("w0" if rng.random() < wrong_share else f"w{rng.integers(1, 6)}")
                rows.append({"config": cfg, "model": "toy", "dataset": "toyset", "prompt_id": f"q{i:02d}",
                             "sample_idx": j, "answer": ans, "correct": ok,
                             "output_tokens": int(rng.poisson(20 + 6 * c)) + 1, "prompt_tokens": 40 + 10 * c,
                             "reward": float(rng.normal(0.8 if ok else 0.2, 0.3 + 0.1 * c))})
    return pl.DataFrame(rows)


def _json(args: list[str]) -> object:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("report")
    src = d / "toy.parquet"
    _table().write_parquet(src)
    out = d / "out"
    res = runner.invoke(app, ["report", str(src), "--out", str(out), "--model", MODEL, "--bootstrap", str(BOOT),
                              "--gain-boot", str(BOOT), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "figures.json").read_text())
    return {"src": src, "out": out, "data": data, "stdout": res.stdout}


def test_every_figure_is_a_png_of_sensible_size(report: dict) -> None:
    out = report["out"]
    assert report["data"]["skipped"] == {}
    assert set(report["data"]["figures"]) == set(FIGURES)
    for name in FIGURES:
        png = out / f"{name}.png"
        w, h = _png_size(png)
        assert 500 <= w <= 2500 and 300 <= h <= 2500, (name, w, h)
        assert 10_000 < png.stat().st_size < 600_000, (name, png.stat().st_size)
        svg = (out / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    html = (out / "index.html").read_text()
    for name in FIGURES:
        assert f"src='{name}.png'" in html
    assert not list(out.glob(".*.tmp")), "temporary files left behind"
    listed = {Path(r["file"]).name for r in json.loads(report["stdout"])}
    assert {"figures.json", "index.html"} | {f"{n}.png" for n in FIGURES} <= listed


def test_curves_match_cli_curves(report: dict) -> None:
    fig = report["data"]["figures"]["curves"]
    assert fig["ks"] == [1, 2, 4, 8]
    cli = _json(["curves", str(report["src"]), "--metric", "pass", "--metric", "maj", "--metric", "bon",
                 "--k", "1,2,4,8", "--bootstrap", str(BOOT), "--seed", "0", "--format", "json"])
    assert fig["rows"] == cli
    assert {r["metric"] for r in cli} == {"pass", "maj", "bon"}


@pytest.fixture(scope="module")
def plan_json(report: dict) -> dict:
    return _json(["plan", str(report["src"]), "--per-prompt", "--model", MODEL, "--format", "json"])


def test_allocation_matches_cli_plan(report: dict, plan_json: dict) -> None:
    fig = report["data"]["figures"]["allocation"]
    rec = plan_json["recommended_config"]
    assert fig["config"] == rec
    a = plan_json["allocations"]
    mine = [(s, n) for c, s, n in zip(a["config"], a["strategy"], a["n"]) if c == rec]
    expect: dict[tuple[str, int], int] = {}
    for key in mine:
        expect[key] = expect.get(key, 0) + 1
    assert {(r["strategy"], r["n"]): r["prompts"] for r in fig["counts"]} == expect
    assert sum(r["prompts"] for r in fig["counts"]) == fig["n_prompts"] == 14


def test_report_reuses_a_saved_plan(report: dict, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    res = runner.invoke(app, ["plan", str(report["src"]), "--per-prompt", "--budget", "4/prompt", "--out",
                              str(plan_file)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", str(report["src"]), "--out", str(tmp_path / "o"), "--plan", str(plan_file),
                              "--figures", "allocation", "--no-svg"])
    assert res.exit_code == 0, res.output
    fig = json.loads((tmp_path / "o" / "figures.json").read_text())["figures"]["allocation"]
    saved = json.loads(plan_file.read_text())
    assert fig["budget"].startswith("4 samples per prompt")
    a = saved["allocations"]
    assert sorted((r["prompt_id"], r["strategy"], r["n"]) for r in fig["allocations"]) == sorted(
        (p, s, n) for c, p, s, n in zip(a["config"], a["prompt_id"], a["strategy"], a["n"])
        if c == saved["recommended_config"])


def test_frontier_matches_cli_plan(report: dict, plan_json: dict) -> None:
    fig = report["data"]["figures"]["frontier"]
    assert fig["units"] == ["tokens", "eflops", "seconds", "usd"]
    assert fig["dataset"] == "toyset" and fig["excluded_configs"] == [] and len(fig["configs"]) == 5
    cp = next(c for c in plan_json["configs"] if c["config"] == plan_json["recommended_config"])
    star, diamond = fig["plan_points"]
    assert star["accuracy"] == pytest.approx(cp["per_prompt_accuracy"])
    assert star["tokens"] == pytest.approx(cp["per_prompt_tokens"])
    assert star["seconds"] == pytest.approx(cp["per_prompt_seconds"])
    assert star["usd"] == pytest.approx(cp["per_prompt_usd"] / cp["n_prompts"])
    assert (diamond["strategy"], diamond["n"]) == (cp["strategy"], cp["n"])
    assert diamond["accuracy"] == pytest.approx(cp["expected_accuracy"])
    assert diamond["tokens"] == pytest.approx(cp["tokens_per_prompt"])
    # the uniform baselines of the plan are points of the figure, with the same predicted accuracy
    pts = {(p["config"], p["strategy"], p["n"]): p for p in fig["points"]}
    for b in cp["baselines"]:
        if b["name"] == "uniform" and b["n"] is not None and b["n"] <= 64:
            assert pts[(cp["config"], b["strategy"], b["n"])]["accuracy"] == pytest.approx(b["expected_accuracy"])
    # the frontier: no point is cheaper and more accurate than a frontier point
    for u in fig["units"]:
        cost = np.array([p[u] for p in fig["points"]])
        acc = np.array([p["accuracy"] for p in fig["points"]])
        front = fig["frontier"][u]
        assert front and np.all(np.diff(cost[front]) >= 0) and np.all(np.diff(acc[front]) > 0)
        for i in front:
            assert not np.any((cost < cost[i]) & (acc > acc[i] + 1e-12))
    # measured points are the exact curve values
    curves = {(r["config"], r["metric"], r["k"]): r["value"]
              for r in report["data"]["figures"]["curves"]["rows"]}
    for m in fig["measured"]:
        assert m["accuracy"] == curves[(m["config"], m["metric"], m["n"])]


def test_frontier_compares_configurations_of_one_task_only() -> None:
    from ttsplan.report import frontier_data

    t = _table().with_columns(pl.when(pl.col("config") == "toy/cfg4").then(pl.lit("other"))
                              .otherwise(pl.col("dataset")).alias("dataset"))
    from ttsplan.features.schema import validate_sample_table

    t = validate_sample_table(t)
    fig = frontier_data(t, [], plan=None, cost_model=None)
    assert fig["units"] == ["tokens"]
    assert "toy/cfg4" not in fig["configs"] or fig["configs"] == ["toy/cfg4"]
    assert {p["config"] for p in fig["points"]} == set(fig["configs"])
    assert fig["excluded_configs"] and fig["highlighted_config"] in fig["configs"]


def test_gain_and_stability_match_cli_fit(report: dict) -> None:
    gain = report["data"]["figures"]["gain"]
    stab = report["data"]["figures"]["stability"]
    assert (gain["target"], gain["n"]) == ("maj", 4)
    cli = _json(["fit", str(report["src"]), "--target", "maj", "--n", "4", "--n-boot", str(BOOT), "--seed", "0",
                 "--format", "json"])
    assert gain["method"] == cli["method"] == "curve"  # the default predictor, not the ridge
    assert gain["predictions"] == cli["predictions"]
    assert gain["curve_law_loco"] == cli["curve_law_loco"]
    assert gain["best_baseline"]["name"] == cli["best_baseline"]
    assert gain["loco_spearman"] == pytest.approx(cli["loco_spearman"])
    assert gain["loco_mae"] == pytest.approx(cli["loco_mae"])
    assert stab["stability"] == cli["stability"]
    assert len(gain["predictions"]) == 5


def test_cost_breakdown_matches_cli_estimate(report: dict) -> None:
    fig = report["data"]["figures"]["cost_breakdown"]
    lp = fig["prompt_tokens"]
    assert lp == 60.0  # mean prompt tokens of the toy table: (40+50+60+70+80)/5
    ns = [r["n"] for r in fig["vs_n"]["rows"]]
    cli = _json(["estimate", "--model", MODEL, "--gpu", "H100", "--strategy", "majority", "--n",
                 ",".join(map(str, ns)), "--prompt-tokens", f"{lp:g}", "--output-tokens",
                 str(fig["vs_n"]["output_tokens"]), "--calibration", "none", "--format", "json"])
    by_l = {}
    for r in fig["vs_output"]["rows"]:
        by_l[r["output_tokens"]] = _json(["estimate", "--model", MODEL, "--gpu", "H100", "--n",
                                          str(fig["vs_output"]["n"]), "--prompt-tokens", f"{lp:g}",
                                          "--output-tokens", f"{r['output_tokens']:g}", "--calibration", "none",
                                          "--format", "json"])
    pairs = list(zip(fig["vs_n"]["rows"], cli)) + [(r, by_l[r["output_tokens"]]) for r in fig["vs_output"]["rows"]]
    for mine, est in pairs:
        for key in ("prefill_s", "decode_s", "verify_s", "latency_s", "bytes", "flops", "eflops", "tokens"):
            assert mine[key] == pytest.approx(est[key], rel=1e-12), key
        parts = sum(mine[k] for k in ("prefill_s", "weights_s", "kv_s", "compute_s", "overhead_s", "verify_s"))
        assert parts == pytest.approx(mine["latency_s"], rel=1e-9)
        assert min(mine["weights_s"], mine["kv_s"]) > 0
    # the Kinetics effect: KV reads overtake weight reads as N and L_out grow
    first, last = fig["vs_n"]["rows"][0], fig["vs_n"]["rows"][-1]
    assert first["weights_s"] > first["kv_s"] and last["kv_s"] > last["weights_s"]


def test_subset_and_skips(tmp_path: Path) -> None:
    src = tmp_path / "three.parquet"
    _table().filter(pl.col("config").is_in(["toy/cfg0", "toy/cfg1", "toy/cfg2"])).write_parquet(src)
    res = runner.invoke(app, ["report", str(src), "--out", str(tmp_path / "o"), "--figures", "curves,stability",
                              "--bootstrap", "0", "--no-svg", "--compact"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "figures.json").read_text())
    assert set(data["figures"]) == {"curves"}
    assert "stability" in data["skipped"]
    png = (tmp_path / "o" / "curves.png").read_bytes()
    assert png[25] == 3, "--compact writes a palette PNG (colour type 3)"
    assert not (tmp_path / "o" / "curves.svg").exists()
    assert "Not drawn" in (tmp_path / "o" / "index.html").read_text()


@pytest.mark.parametrize("args, needle", [
    (["report", "no/such/file.parquet", "--out", "x"], "no/such/file.parquet"),
    (["report", "{src}", "--out", "{out}", "--figures", "curvs"], "figures must be among"),
    (["report", "{src}", "--out", "{out}", "--gain-target", "best"], "--gain-target"),
])
def test_bad_input_exits_2(tmp_path: Path, args: list[str], needle: str) -> None:
    src = tmp_path / "t.parquet"
    _table().head(64).write_parquet(src)
    args = [a.format(src=src, out=tmp_path / "o") for a in args]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_missing_default_data_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ttsplan.cli.report_cmd as cmd

    monkeypatch.setattr(cmd, "DEFAULT_DATA", tmp_path / "default_samples.parquet")
    res = runner.invoke(app, ["report", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "embedded default dataset" in res.output and "make_default.py" in res.output


def test_import_stays_lazy() -> None:
    import subprocess
    import sys

    code = "import sys, ttsplan.cli.main, ttsplan.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.strip() == "False"


def test_report_refuses_to_write_into_a_python_package(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    r = CliRunner().invoke(app, ["report", "--out", str(pkg)])
    assert r.exit_code == 2 and "must not be a Python package" in r.output
    assert sorted(p.name for p in pkg.iterdir()) == ["__init__.py"]


def test_report_draws_a_policy_plan_and_takes_a_calibration(tmp_path: Path) -> None:
    runner = CliRunner()
    plan = tmp_path / "plan.json"
    assert runner.invoke(app, ["plan", "--orders", "2", "--out", str(plan)]).exit_code == 0
    out = {}
    for name, extra in (("cal", []), ("raw", ["--calibration", "none"])):
        out[name] = tmp_path / name
        r = runner.invoke(app, ["report", "--plan", str(plan), "--out", str(out[name]), "--figures",
                                "frontier,allocation", "--no-svg", *extra])
        assert r.exit_code == 0, r.output
    cal, raw = (json.loads((out[n] / "figures.json").read_text()) for n in ("cal", "raw"))
    point = cal["figures"]["frontier"]["plan_points"][0]
    written = json.loads(plan.read_text())
    chosen = next(c for c in written["configs"] if c["config"] == point["config"])
    assert point["accuracy"] == chosen["accuracy"]["mean"] and "cross-validated" in point["label"]
    assert point["config"] in written["recommended_by_dataset"].values()
    assert "no per-prompt allocation" in cal["skipped"]["allocation"]
    assert point["seconds"] > raw["figures"]["frontier"]["plan_points"][0]["seconds"]   # calibrated: below peak
    r = runner.invoke(app, ["report", "--calibration", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--calibration must be a calib.json" in r.output and not (tmp_path / "x").exists()
