"""The profile chart a person reads: interest weights over time."""
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def plot_interest_timeline(timeline: pd.DataFrame, path: Path, title: str, top: int = 6):
    """One line per tag (the ``top`` strongest at the last moment), weight against date."""
    figure, axis = plt.subplots(figsize=(8, 4))
    if timeline.empty:
        axis.text(0.5, 0.5, "no events yet", ha="center", va="center")
    else:
        table = timeline.pivot_table(index="as_of", columns="tag", values="weight",
                                     fill_value=0.0)
        strongest = table.iloc[-1].sort_values(ascending=False).index[:top]
        dates = pd.to_datetime(table.index, unit="s")
        for tag in strongest:
            axis.plot(dates, table[tag], marker="o", markersize=3, label=tag)
        axis.set_ylabel("interest weight")
        axis.set_ylim(0, max(0.05, float(table[strongest].to_numpy().max()) * 1.1))
        axis.legend(loc="upper left", fontsize=8, ncols=2)
        axis.grid(alpha=0.3)
        figure.autofmt_xdate()
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
