"""``tf-profiles evaluate``: the model and the baselines on the same split, full ranking."""
import json
import time
from pathlib import Path
from typing import Dict, Optional

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.evaluation import baselines
from tf_profiles.evaluation.metrics import ranking_metrics
from tf_profiles.evaluation.plots import plot_metric_bars
from tf_profiles.evaluation.protocol import eval_rows
from tf_profiles.evaluation.scoring import model_scores
from tf_profiles.models.ranking import exclude

# The metric each protocol is judged by (the bar chart shows it).
HEADLINE = {"loo": "NDCG@10", "cold-users": "NDCG@10", "cold-items": "Recall@10"}


def _baseline_scorers(protocol: str, catalogue, rows, seed: int):
    if protocol == "cold-items":
        # Held-out items have no interactions: only text can rank them.
        item_text = catalogue.item_text_by_id()
        return {
            "content-only (MiniLM cosine)": lambda: baselines.content_only(rows, item_text),
            "random": lambda: baselines.random_scores(rows, seed),
        }
    return {
        "MostPop": lambda: baselines.most_popular(rows),
        "EASE": lambda: baselines.ease(rows),
        "Markov chain": lambda: baselines.markov_chain(rows),
        "TFRS ID two-tower": lambda: baselines.id_two_tower(rows, seed=seed),
        "TFRS GRU sequential": lambda: baselines.gru_sequential(rows, seed=seed),
    }


def evaluate(model_dir, with_baselines: bool = True, output_dir: Optional[Path] = None,
             log=print) -> Dict[str, Dict[str, float]]:
    """Scores the test events of a trained model's split.

    Args:
      model_dir: written by ``train``; its split decides the protocol.
      with_baselines: also fit and score the protocol's baselines.
      output_dir: where evaluation.{md,json,png} go (default: model_dir).

    Returns:
      {method: {metric: value}}, the model first.
    """
    model_dir = ModelDir(Path(model_dir))
    model_dir.check()
    config, split, catalogue = model_dir.config(), model_dir.split(), model_dir.catalogue()
    rows = eval_rows(split, "test", config.max_history)
    if not len(rows.users):
        raise ValueError(f"{model_dir.split_dir}: the split has no test events")
    scorers = {"tf_profiles (this model)": lambda: model_scores(model_dir.load_model(), rows)}
    if with_baselines:
        scorers.update(_baseline_scorers(split.protocol, catalogue, rows, config.seed))
    table, seconds = {}, {}
    for name, scorer in scorers.items():
        started = time.perf_counter()
        scores = exclude(scorer(), rows.seen)
        table[name] = ranking_metrics(scores, rows.targets)
        seconds[name] = round(time.perf_counter() - started, 1)
        log(f"{name}: {HEADLINE[split.protocol]} {table[name][HEADLINE[split.protocol]]:.4f}")
    output_dir = Path(output_dir) if output_dir else model_dir.path
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {"protocol": split.protocol, "test_rows": len(rows.users),
              "candidates": len(rows.candidates), "metrics": table, "seconds": seconds}
    (output_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    (output_dir / "evaluation.md").write_text(markdown_table(report))
    plot_metric_bars(table, HEADLINE[split.protocol], output_dir / "evaluation.png",
                     f"{split.protocol}: {HEADLINE[split.protocol]} (full ranking)")
    return table


def markdown_table(report) -> str:
    metrics = report["metrics"]
    columns = ["HR@10", "Recall@10", "Recall@50", "Recall@100", "NDCG@10", "MRR"]
    lines = [f"Protocol `{report['protocol']}`: {report['test_rows']} test users, "
             f"{report['candidates']} candidates, full ranking, seen items masked.", "",
             "| method | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, values in metrics.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.4f}" for c in columns) + " |")
    return "\n".join(lines) + "\n"
