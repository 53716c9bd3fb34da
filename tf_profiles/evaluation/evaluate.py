"""``tf-profiles evaluate``: the model and the baselines on the same split, full ranking."""
import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Dict, Optional

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.evaluation import tuning
from tf_profiles.evaluation.metrics import ranking_metrics
from tf_profiles.evaluation.plots import plot_metric_bars
from tf_profiles.evaluation.protocol import eval_rows
from tf_profiles.evaluation.scoring import model_scores
from tf_profiles.models.ranking import exclude

# The metric each protocol is judged by (the bar chart shows it).
HEADLINE = {"loo": "NDCG@10", "temporal": "NDCG@10", "cold-users": "NDCG@10",
            "cold-items": "Recall@10"}


def _tuned_baselines(split, catalogue, rows, max_history, seed, log):
    """Each baseline of the protocol tuned on validation, as a test scorer.

    Returns ({title: scorer}, {title: {"params", "trials"}}).
    """
    valid = tuning.validation_rows(split, max_history)
    item_text = catalogue.item_text_by_id()
    scorers, choices = {}, {}
    for name in tuning.baselines_for(split.protocol):
        tuned = tuning.tune(name, valid, item_text=item_text, seed=seed)
        title = tuning.REGISTRY[name].title
        log(f"{title}: {len(tuned.trials)} trials on validation, chose {tuned.params}")
        scorers[title] = functools.partial(tuning.tuned_scores, name, tuned.params, rows,
                                           item_text=item_text, seed=seed)
        choices[title] = {"params": tuned.params,
                          "trials": [dataclasses.asdict(trial) for trial in tuned.trials]}
    return scorers, choices


# What the model's test score was fitted on; counting and text baselines
# always fit on the events known at test time (training + validation).
FIT_ON = {True: "the same events as the baselines (training + validation)",
          False: "training events only (the baselines: training + validation; refit "
                 "it with `train --refit --epochs-from` for an equal comparison)"}


def evaluate(model_dir, with_baselines: bool = True, output_dir: Optional[Path] = None,
             log=print) -> Dict[str, Dict[str, float]]:
    """Scores the test events of a trained model's split.

    Args:
      model_dir: written by ``train``; its split decides the protocol.
      with_baselines: also score the protocol's baselines, each with the
        parameters its grid search chose on validation (recorded in
        evaluation.json).
      output_dir: where evaluation.{md,json,png} go (default: model_dir).

    Returns:
      {method: {metric: value}}, the model first.
    """
    model_dir = ModelDir(Path(model_dir))
    model_dir.check()
    config, split, catalogue = model_dir.config(), model_dir.split(), model_dir.catalogue()
    rows = eval_rows(split, "test", config.max_history)
    scorers = {"tf_profiles (this model)": lambda: model_scores(model_dir.load_model(), rows)}
    choices = {}
    if with_baselines:
        baseline_scorers, choices = _tuned_baselines(split, catalogue, rows, config.max_history,
                                                     config.seed, log)
        scorers.update(baseline_scorers)
    table, seconds = {}, {}
    for name, scorer in scorers.items():
        started = time.perf_counter()
        scores = exclude(scorer(), rows.seen)
        table[name] = ranking_metrics(scores, rows.targets)
        seconds[name] = round(time.perf_counter() - started, 1)
        log(f"{name}: {HEADLINE[split.protocol]} {table[name][HEADLINE[split.protocol]]:.4f}")
    output_dir = Path(output_dir) if output_dir else model_dir.path
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {"protocol": split.protocol, "split_seed": split.seed, "test_rows": len(rows.users),
              "model_fit_on": FIT_ON[bool(config.refit) or not len(split.valid)],
              "candidates": len(rows.candidates), "metrics": table, "seconds": seconds,
              "baseline_tuning": choices}
    (output_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    (output_dir / "evaluation.md").write_text(markdown_table(report))
    plot_metric_bars(table, HEADLINE[split.protocol], output_dir / "evaluation.png",
                     f"{split.protocol}: {HEADLINE[split.protocol]} (full ranking)")
    return table


def markdown_table(report) -> str:
    metrics = report["metrics"]
    columns = ["HR@10", "Recall@10", "Recall@50", "Recall@100", "NDCG@10", "MRR"]
    lines = [f"Protocol `{report['protocol']}`: {report['test_rows']} test users, "
             f"{report['candidates']} candidates, full ranking, seen items masked; "
             f"same-second events in a seeded random order (split seed "
             f"{report.get('split_seed')}); baselines tuned on validation; the model "
             f"fit on {report.get('model_fit_on', FIT_ON[False])}.", "",
             "| method | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, values in metrics.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.4f}" for c in columns) + " |")
    choices = report.get("baseline_tuning", {})
    if choices:
        lines += ["", "Baseline parameters chosen on validation: " + "; ".join(
            f"{name} {choice['params'] or '(none)'}" for name, choice in choices.items())]
    return "\n".join(lines) + "\n"
