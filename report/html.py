"""The report on disk: every figure's files, ``figures.json`` (the numbers) and ``index.html``."""
from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from ttsplan.features.atomic import write_atomic
from ttsplan.features.errors import TtsplanError
from ttsplan.report.build import Progress, no_progress
from ttsplan.report.drawing import render_figure
from ttsplan.report.figure_data import FIGURES, to_json

#: the caption under each figure in index.html
CAPTIONS = {
    "curves": "Exact accuracy-vs-N curves (expectation over all N-subsets of the recorded samples), one panel per "
              "configuration; bands are bootstrap intervals over prompts. pass@N is an oracle (some sample correct) "
              "and bounds what any selector can reach.",
    "frontier": "Every (configuration, strategy, N) of the task priced per prompt, with the planner's accuracy "
                "estimates; the black staircase is the Pareto frontier. The star is the planner's per-prompt "
                "allocation, the diamond its single (strategy, N) for every prompt; hollow circles are measured "
                "accuracies on the recorded samples.",
    "allocation": "How the plan spends the budget: prompts per planned N, coloured by strategy, and each prompt's "
                  "predicted accuracy at its N.",
    "gain": "Each point is one configuration: the gain it gets from N samples, predicted from one validation pass "
            "by extrapolating that configuration's own curve (the law chosen on the other configurations), "
            "against the gain measured on the other samples; the best baseline's ρ is printed beside.",
    "stability": "How often bootstrap-Lasso keeps each candidate config feature (the inputs of ttsplan fit "
                 "--method ridge); the curve predictor of the gain figure is not fitted on them.",
    "cost_breakdown": "Roofline split of one prompt's GPU time. Small models with long generations spend most decode "
                      "time reading the KV cache, not the weights: the Kinetics effect FLOP counts miss.",
}

def _plan_sentence(plan: dict | None) -> str:
    """One sentence on the plan: a per-prompt plan's budget and recommendation, or a policy plan's objective."""
    if not plan:
        return ""
    if "objective" in plan:
        rec = ", ".join(f"<code>{html.escape(c)}</code>" for c in plan["recommended_by_dataset"].values())
        return f" Policy plan: {html.escape(plan['objective'])}; recommended {rec}."
    return (f" Plan: budget {html.escape(plan['budget'])}, recommended configuration "
            f"<code>{html.escape(plan['recommended_config'])}</code>.")


def index_html(report: dict, formats: Sequence[str]) -> str:
    """The page that shows every drawn figure (``<name>.png``) with its caption, and why others were skipped."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>ttsplan report</title>",
             ("<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
              "color:#222}img{max-width:100%;border:1px solid #ddd}figure{margin:2em 0}"
              "figcaption{color:#444;margin-top:.4em}code{background:#f4f4f4;padding:0 .2em}</style></head><body>"),
             "<h1>ttsplan report</h1>"]
    src = ", ".join(report.get("sources") or []) or "(in-memory table)"
    parts.append(f"<p>Data: <code>{html.escape(src)}</code> — {len(report.get('configs', []))} configurations."
                 + (f" Priced for <b>{html.escape(str(report['model']))}</b> on <b>{html.escape(str(report['gpu']))}"
                    "</b>." if report.get("model") else "")
                 + _plan_sentence(report.get("plan"))
                 + " The numbers behind every figure are in <a href='figures.json'>figures.json</a>.</p>")
    for name in FIGURES:
        if name in report["figures"]:
            d = report["figures"][name]
            links = " ".join(f"<a href='{name}.{f}'>{f.upper()}</a>" for f in formats)
            parts.append(f"<figure id='{name}'><h2>{html.escape(d.get('title', name))}</h2>"
                         f"<img src='{name}.png' alt='{html.escape(d.get('title', name))}'>"
                         f"<figcaption>{html.escape(CAPTIONS[name])} {links}"
                         + (f"<br>Same numbers: <code>{html.escape(d['command'])}</code>" if d.get("command") else "")
                         + "</figcaption></figure>")
        elif name in report["skipped"]:
            parts.append(f"<h2>{name}</h2><p><i>Not drawn: {html.escape(report['skipped'][name])}</i></p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_report(report: dict, out_dir: str | Path, formats: Sequence[str] = ("png", "svg"),
                  progress: Progress = no_progress, compact: bool = False) -> list[Path]:
    """Write every figure of ``report`` (from :func:`build_report`), ``figures.json`` and ``index.html``."""
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or "png" not in formats:
        raise TtsplanError(f"formats must include png and be among png, svg, pdf, got {', '.join(formats)}.")
    out_dir = Path(out_dir)
    written: list[Path] = []
    for name in FIGURES:
        if name in report["figures"]:
            progress(f"drawing {name} …")
            written += render_figure(name, report["figures"][name], out_dir, formats, compact)
    for name, d in report["figures"].items():
        d["files"] = [f"{name}.{f}" for f in formats]
    written.append(write_atomic(out_dir / "figures.json", to_json(report) + "\n"))
    written.append(write_atomic(out_dir / "index.html", index_html(report, formats)))
    return written


__all__ = ["CAPTIONS", "index_html", "render_report"]
