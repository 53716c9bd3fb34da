"""PNG charts a person reads: training curves and evaluation bars."""
from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curves(history: Dict[str, List[float]], path: Path):
    """Loss per epoch, and validation NDCG@10 when it was measured."""
    panels = [key for key in ("loss", "val_ndcg@10") if key in history]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for axis, key in zip(axes[0], panels):
        epochs = range(1, len(history[key]) + 1)
        axis.plot(epochs, history[key], marker="o")
        axis.set_xlabel("epoch")
        axis.set_title({"loss": "training loss", "val_ndcg@10": "validation NDCG@10"}[key])
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_metric_bars(table: Dict[str, Dict[str, float]], metric: str, path: Path, title: str):
    """One bar per method for ``metric``; the table is {method: {metric: value}}."""
    names = list(table)
    values = [table[name].get(metric, 0.0) for name in names]
    figure, axis = plt.subplots(figsize=(max(5, 1.2 * len(names)), 3.5))
    bars = axis.bar(names, values, color=["tab:blue"] + ["tab:gray"] * (len(names) - 1))
    axis.bar_label(bars, fmt="%.3f")
    axis.set_ylabel(metric)
    axis.set_title(title)
    plt.setp(axis.get_xticklabels(), rotation=20, ha="right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
