"""Writing evaluation results: results.json, a paper-style Markdown table, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: arXiv 2510.13443, NMAE after few-cycle fine-tuning (per cent).
PAPER = {
    ("N", 1): {"emg": 6.8, "emg+angle": 3.1},
    ("N", 50): {"emg": 13.7, "emg+angle": 3.5},
    ("A", 1): {"emg": 7.2, "emg+angle": 2.8},
    ("A", 50): {"emg": 15.6, "emg+angle": 7.5},
}
GROUP_NAMES = {"N": "UCI normal", "A": "UCI abnormal", "all": "UCI all"}
STEPS = (1, 5, 50)


def _is_uci(results: dict) -> bool:
    """True when the evaluated data are the UCI files (their group names and the paper's
    numbers apply); other datasets are named by their own groups."""
    return bool(results.get("data", {}).get("uci", True))


def _groups(results: dict) -> list[str]:
    """Groups in table order: UCI N and A first, the others sorted, then "all"."""
    found = [g for g in results["summary"] if g != "all"]
    order = [g for g in ("N", "A") if g in found]
    order += sorted(g for g in found if g not in ("N", "A"))
    return order + (["all"] if "all" in results["summary"] else [])


def _group_name(results: dict, group: str) -> str:
    if _is_uci(results):
        return GROUP_NAMES.get(group, f"group {group}")
    if group == "all":
        return "all"
    return f"group {group}" if group else "(no group)"


def _cell(summary: dict, method: str, step: int) -> str:
    entry = summary.get(method)
    if not entry:
        return "–"
    v, s = entry["nmae"][step - 1], entry["nmae_seed_std"][step - 1]
    digits = _digits(v)
    return f"{_pct(v, digits)} ± {_pct(s, digits)}" if s > 0 else _pct(v, digits)


def _digits(fraction: float) -> int:
    """Decimals for a percentage: 2 below 1 % (0.31 vs 0.32 must stay visible), else 1."""
    return 2 if fraction < 0.01 else 1


def _pct(fraction: float, digits: int | None = None) -> str:
    return f"{100 * fraction:.{_digits(fraction) if digits is None else digits}f}"


def markdown_table(results: dict) -> str:
    """Paper layout (rows group x horizon) plus our 50 ms row and the baselines, NMAE in %."""
    summary = results["summary"]
    seeds = results["settings"]["seeds"]
    lines = [
        f"NMAE in % (mean over recordings; ± = std over {len(seeds)} seed(s)); "
        "horizon steps at 100 Hz: 1 = 10 ms, 5 = 50 ms, 50 = 500 ms.",
        "",
        _choice_line(results["settings"]),
        "",
        *(["**Development run** (`--dev`): calibrated on K-1 cycles, scored inside cycle K of "
           "the calibration; not the evaluation's test windows, not comparable with the paper.",
           ""] if results["settings"].get("dev") else []),
        "| group / horizon | EMG only (ours) | EMG + angle (ours) | paper EMG | paper EMG+angle "
        "| angle-only net | EMG ridge (TD) | EMG only, no fine-tune | EMG+angle, no fine-tune "
        "| EMG only, no memory | EMG+angle, no memory "
        "| calib. mean | persistence | const. velocity |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group in _groups(results):
        g = summary[group]
        for step in STEPS:
            paper = PAPER.get((group, step), {}) if _is_uci(results) else {}
            row = [
                f"{_group_name(results, group)}, {step}-step ({step * 10} ms)",
                _cell(g, "emg:finetuned", step),
                _cell(g, "emg+angle:finetuned", step),
                f"{paper['emg']:.1f}" if paper else "–",
                f"{paper['emg+angle']:.1f}" if paper else "–",
                _cell(g, "angle:finetuned", step),
                _cell(g, "ridge_td", step),
                _cell(g, "emg:pretrained", step),
                _cell(g, "emg+angle:pretrained", step),
                _cell(g, "emg:network", step),
                _cell(g, "emg+angle:network", step),
                _cell(g, "calibration_mean", step),
                _cell(g, "persistence", step),
                _cell(g, "constant_velocity", step),
            ]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "All metrics at 1 and 50 steps (seed mean; MAE in degrees):", "",
              "| group | method | NMAE 1 | NMAE 50 | NRMSE 1 | NRMSE 50 | MAE 1 | MAE 50 "
              "| R² 1 | R² 50 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for group in _groups(results):
        for method in results["methods"]:
            e = summary.get(group, {}).get(method)
            if not e:
                continue
            cells = [f"{100 * e[k][i]:.1f} %" if k in ("nmae", "nrmse") else f"{e[k][i]:.2f}"
                     for k in ("nmae", "nrmse", "mae_deg", "r2") for i in (0, 49)]
            lines.append(f"| {_group_name(results, group)} | {method} | " + " | ".join(cells)
                         + " |")
    lines += ["", "Per recording (seed mean, NMAE % at 10 / 50 / 500 ms; "
              "K = calibration cycles used):", "",
              "| recording | K | test windows | EMG only | EMG + angle | angle-only "
              "| persistence |",
              "|---|---|---|---|---|---|---|"]
    for name, rec in results["recordings"].items():
        def trio(method: str, rec: dict = rec) -> str:
            vals = [rec["methods"][s][method]["nmae"] for s in rec["methods"]
                    if method in rec["methods"][s]]
            if not vals:
                return "–"
            m = np.mean(vals, axis=0)
            return " / ".join(_pct(m[k - 1]) for k in STEPS)
        lines.append(f"| {name} | {rec['k_used']} | {rec['n_test_windows']} | "
                     f"{trio('emg:finetuned')} | {trio('emg+angle:finetuned')} | "
                     f"{trio('angle:finetuned')} | {trio('persistence')} |")
    lines += _blend_lines(results.get("blends") or {})
    if results.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in results["skipped"].items())]
    return "\n".join(lines) + "\n"


def _choice_line(settings: dict) -> str:
    """Which subject models the "ours" columns score: the app's, or a research option."""
    share = settings.get("memory_share")
    if settings.get("choice", "product") == "product" and share is None:
        return ("**Subject models as the app builds them** (product rule: memory parameters "
                "`DEFAULT_PARAMS`, memory share `DEFAULT_BLEND`; both were chosen on all UCI gait "
                "recordings, so on UCI subjects they are not out-of-sample choices).")
    rule = ("memory parameters and memory blend chosen **per test subject** on the other "
            "subjects' recordings" if settings.get("choice") == "per-subject"
            else "the product's memory parameters")
    if share is not None:
        rule += (", memory share fitted per horizon on the held-back cycle" if share == "fitted"
                 else f", a fixed memory share {share[0]:g} reached at {share[1]} steps")
    return f"**Research option, not what the app runs**: {rule} (`kneegui evaluate --choice`)."


def _blend_lines(blends: dict) -> list[str]:
    """Which memory blends (``wSHARE-rRAMP``) were chosen for the test subjects on the other
    subjects' recordings, and the best on all recordings."""
    if not blends:
        return []
    lines = ["", "Calibration-memory blend (share w reached at r steps) chosen for each test "
             "subject on the other subjects' recordings (times chosen over recordings × seeds; "
             "best on all recordings = mean NMAE over horizons):", "",
             "| input set | chosen | best on all recordings |", "|---|---|---|"]
    for input_set, entry in blends.items():
        chosen = ", ".join(f"{k} ×{v}" for k, v in sorted(entry["chosen"].items(),
                                                          key=lambda kv: -kv[1]))
        best = entry["best_on_all"]
        lines.append(f"| {input_set} | {chosen} | {best} ({_pct(entry['scores'][best])}) |")
    return lines


def write_plots(results: dict, predictions: dict, out: Path) -> list[Path]:
    """NMAE-vs-horizon per group and predicted-vs-measured for one recording (PNG, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    methods = [m for m in ("emg:finetuned", "emg+angle:finetuned", "angle:finetuned", "ridge_td",
                           "persistence", "constant_velocity", "calibration_mean")
               if any(m in g for g in results["summary"].values())]
    groups = _groups(results)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        for m in methods:
            entry = results["summary"][group].get(m)
            if entry:
                h = np.arange(1, len(entry["nmae"]) + 1) * 10
                ax.plot(h, 100 * np.asarray(entry["nmae"]), label=m)
        ax.set_title(_group_name(results, group))
        ax.set_xlabel("horizon (ms)")
        ax.set_ylabel("NMAE (%)")
        ax.set_ylim(0, 60)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = out / "nmae_vs_horizon.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    if predictions:
        name = sorted(predictions, key=lambda k: -len(predictions[k]["_ends"]))[0]
        p = predictions[name]
        ends, angle = p["_ends"], p["_angle"]
        fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
        for ax, step in zip(axes, (5, 50), strict=True):
            t = (ends + step) / 100.0
            ax.plot(np.arange(len(angle)) / 100.0, angle, "k", lw=1.5, label="measured")
            for m in ("emg:finetuned", "emg+angle:finetuned", "angle:finetuned"):
                if m in p:
                    ax.plot(t, p[m][:, step - 1], lw=1, label=f"{m} ({step * 10} ms ahead)")
            ax.set_ylabel("knee flexion (deg)")
            ax.set_title(f"{name}: prediction {step * 10} ms ahead, placed at its target time")
            ax.legend(fontsize=7, loc="upper right")
            ax.set_xlim(t[0], min(t[-1], t[0] + 10))
        axes[-1].set_xlabel("time (s)")
        fig.tight_layout()
        path = out / f"trajectory_{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_results(results: dict, out: Path) -> list[Path]:
    """results.json + results.md + PNGs into ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    predictions = results.pop("_predictions", {})
    json_path = out / "results.json"
    json_path.write_text(json.dumps(_rounded(results), default=float) + "\n")
    md_path = out / "results.md"
    md_path.write_text(markdown_table(results))
    return [json_path, md_path, *write_plots(results, predictions, out)]


def _rounded(obj):
    """Floats to 5 significant digits (keeps results.json small and diff-friendly)."""
    if isinstance(obj, float):
        return float(f"{obj:.5g}")
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return obj
