"""Run every analysis command with ``--format json`` on the shared real data and write one file per run.

Used to show that a refactor leaves behaviour unchanged: run it before and after, then diff the two
folders (``diff -r before after``). Needs the ``ttsplan`` console script and ``../shared/data``.

    python benchmarks/cli_snapshot.py out/before
    ...change the code...
    python benchmarks/cli_snapshot.py out/after --compare out/before

``--compare`` diffs the JSON of every run with a relative tolerance of 1e-9 on floats: polars'
parallel group-by sums in a different order from run to run, which moves the last digit.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SC40 = str(SHARED / "samples" / "sc40_addsub.parquet")
GAME24 = str(SHARED / "samples" / "game24_gpt4.parquet")
PYTHIA = str(SHARED / "counts" / "monkeys_pythia_math.parquet")
H100 = str(SHARED / "serving" / "h100_silicon.csv")

RUNS: dict[str, list[str]] = {
    "curves_sc40": ["curves", SC40, "--metric", "maj", "--metric", "pass", "--k", "1,4,40"],
    "curves_game24": ["curves", GAME24, "--metric", "bon", "--k", "1,2,5"],
    "features_sc40": ["features", SC40],
    "features_prompt_game24": ["features", GAME24, "--level", "prompt"],
    "replay_sc40": ["replay", SC40, "--rule", "horizon", "--orders", "5"],
    "fit_sc40": ["fit", SC40, GAME24, str(SHARED / "samples" / "sc40_aqua.parquet"), "--target", "maj", "--n", "20", "--k-features", "8", "--n-boot", "20"],
    "extrapolate_pythia": ["extrapolate", PYTHIA, "--fit-k", "100", "--predict-k", "1000", "--n-boot", "0"],
    "estimate_qwen": ["estimate", "--model", "Qwen3-8B", "--n", "1,8", "--prompt-tokens", "200",
                      "--output-tokens", "1000"],
    "calibrate_h100": ["calibrate", H100, "--no-loo"],
    "plan_default": ["plan"],
    "plan_sc40": ["plan", SC40, "--budget", "8/prompt"],
    "evaluate_sc40": ["evaluate", SC40, "--seed", "0"],
}


def _diff(a: object, b: object, path: str, out: list[str]) -> None:
    if isinstance(a, float) or isinstance(b, float):
        ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9,
                                                                                           abs_tol=1e-12)
        if not ok:
            out.append(f"{path}: {a!r} != {b!r}")
    elif isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            _diff(a.get(k), b.get(k), f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b and not path.endswith("model_hash"):  # the hash covers float arrays bit for bit
        out.append(f"{path}: {str(a)[:80]!r} != {str(b)[:80]!r}")


def compare(new_dir: str, old_dir: str) -> int:
    problems: list[str] = []
    for name in RUNS:
        new, old = Path(new_dir) / f"{name}.json", Path(old_dir) / f"{name}.json"
        if not old.exists():
            problems.append(f"{name}: missing in {old_dir}")
            continue
        try:
            _diff(json.loads(new.read_text() or "null"), json.loads(old.read_text() or "null"), name, problems)
        except json.JSONDecodeError as exc:
            problems.append(f"{name}: not JSON ({exc})")
    print("\n".join(problems[:50]) if problems else f"all {len(RUNS)} runs unchanged (floats to 1e-9)")
    return 1 if problems else 0


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name, args in RUNS.items():
        r = subprocess.run(["ttsplan", *args, "--format", "json"], capture_output=True, text=True)
        (out / f"{name}.json").write_text(r.stdout)
        (out / f"{name}.rc").write_text(f"{r.returncode}\n")
        print(f"{name}: exit {r.returncode}", file=sys.stderr)
        failed += r.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    if any(a in ("-h", "--help") for a in sys.argv[1:]) or any(a.startswith("-") for a in sys.argv[1:2]):
        print(__doc__)
        sys.exit(0 if any(a in ("-h", "--help") for a in sys.argv[1:]) else 2)
    if len(sys.argv) == 4 and sys.argv[2] == "--compare":
        rc = main(sys.argv[1])
        sys.exit(rc or compare(sys.argv[1], sys.argv[3]))
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/cli_snapshot.py OUT_DIR [--compare OLD_DIR]")
    sys.exit(main(sys.argv[1]))
