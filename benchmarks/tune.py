"""Hyper-parameter search on the validation events of ml-100k leave-one-out.

Each trial trains one config of the causal recipe (every position against
the whole catalogue; early stopping on validation NDCG@10) and records its
best validation NDCG@10, the epoch it was reached and the fit time. Test
events are never read. A fit takes minutes on 2 CPU cores, so the search is
greedy, one parameter at a time in ``SPACE``'s order: trial 0 is the values
before the search (the first of each list), then each parameter's other
values are tried on top of the best trial so far, and the best is kept.
Trials are appended to ``docs/benchmarks/tune_<variant>.json`` as they
finish, so an interrupted search resumes where it stopped. Run:

    .venv/bin/python benchmarks/tune.py [--variant model|sasrec] [--budget 20]

``--variant sasrec`` searches SASRec+ (the same causal trainer reading item
IDs and the history only) with the same space and budget, less the
parameters of inputs it does not read, so the model and its strongest
trained competitor get the same tuning care. The best trial's values become
the defaults of ``TrainConfig`` (model) and of the quality benchmark's
SASRec+ variant (read from its JSON).
"""
import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import tf_profiles  # noqa: F401  (Keras 2 before TensorFlow)
from tf_profiles.bundle.config import TrainConfig
from tf_profiles.data.loaders import load_dataset
from tf_profiles.data.movielens import convert_ml100k
from tf_profiles.training.trainer import VALIDATION_METRIC, train

ROOT = Path(__file__).resolve().parent.parent
# The searched values in search order; the first of each is its value before
# the search.
SPACE = {
    "mask_seen": [True, False],
    "item_bias": [False, True],
    "learning_rate": [1e-3, 2e-3, 5e-4],
    "dropout": [0.2, 0.4],
    "user_id_dropout": [0.1, 0.5],
    "max_history": [100, 200, 50],
    "temperature": [0.1, 0.05, 0.2],
    "num_layers": [2, 1, 3],
    "learning_rate_decay": [1.0, 0.95],
    "id_dropout": [0.1, 0.3],
    "embedding_dim": [64, 128],
    "batch_size": [64, 128],
    "num_heads": [2, 4],
}
# What every trial shares: the recipe, and room to reach the plateau.
FIXED = {"recipe": "causal", "negatives": "catalogue", "epochs": 100, "patience": 5}
# The ablation switches of each searched variant.
VARIANTS = {
    "model": {},
    "sasrec": {"use_item_text": False, "use_user_text": False, "use_user_ids": False},
}
# Parameters of inputs a variant does not read (their trials would repeat one).
UNUSED = {"model": (), "sasrec": ("user_id_dropout", "id_dropout")}


def greedy_search(evaluate, budget: int, space: dict = SPACE):
    """The one-parameter-at-a-time search; ``evaluate(values)`` → score.

    Stops after ``budget`` trials. Returns the best values.
    """
    best = {name: values[0] for name, values in space.items()}
    best_score, trials = evaluate(best), 1
    for name, values in space.items():
        for value in values:
            if value == best[name]:
                continue
            if trials == budget:
                return best
            candidate = {**best, name: value}
            score, trials = evaluate(candidate), trials + 1
            if score > best_score:
                best, best_score = candidate, score
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="model")
    parser.add_argument("--budget", type=int, default=20,
                        help="trials (a fit takes 2-6 min on 2 CPU cores)")
    parser.add_argument("--work-dir", default=str(ROOT / "runs" / "tune"))
    args = parser.parse_args()
    out = ROOT / "docs" / "benchmarks" / f"tune_{args.variant}"
    work = Path(args.work_dir)
    paths = convert_ml100k(work / "data")
    dataset = load_dataset(paths["interactions"], paths["items"], paths["users"])
    record = (json.loads(out.with_suffix(".json").read_text())
              if out.with_suffix(".json").exists() else {"trials": []})
    space = {k: v for k, v in SPACE.items() if k not in UNUSED[args.variant]}
    record.update(variant=args.variant, space=space, fixed={**FIXED, **VARIANTS[args.variant]},
                  max_epochs=FIXED["epochs"], budget=args.budget,
                  protocol="leave-one-out, split seed 0 (same-second events in a seeded "
                           "random order); selection on validation only")

    def evaluate(values):
        for trial in record["trials"]:
            if trial["values"] == values:  # done before an interruption
                return trial["best_val_ndcg@10"]
        config = TrainConfig(**record["fixed"], **values)
        directory = work / args.variant / f"trial-{len(record['trials']):02d}"
        shutil.rmtree(directory, ignore_errors=True)
        metrics = train(dataset, config, directory)
        validation = metrics["history"][VALIDATION_METRIC]
        record["trials"].append({
            "values": values, "best_val_ndcg@10": round(max(validation), 5),
            "selected_epochs": metrics["selected_epochs"],
            "val_ndcg@10_per_epoch": [round(v, 5) for v in validation],
            "fit_seconds": metrics["train_seconds"]})
        # Only the record is kept: a trial's model folder is ~100 MB.
        shutil.rmtree(directory, ignore_errors=True)
        out.with_suffix(".json").write_text(json.dumps(record, indent=2))
        write_markdown(record, out.with_suffix(".md"))
        return max(validation)

    record["best"] = greedy_search(evaluate, args.budget, space)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    write_markdown(record, out.with_suffix(".md"))
    print("best:", record["best"])


def write_markdown(record, path: Path):
    trials = sorted(enumerate(record["trials"]), key=lambda t: -t[1]["best_val_ndcg@10"])
    names = list(record["space"])
    lines = [f"# Hyper-parameter search: {record['variant']} ({time.strftime('%Y-%m-%d')})", "",
             f"Protocol: {record['protocol']}. Greedy search, one parameter at a time in "
             "the order below (trial 0 = the first value of each; each other value is tried "
             f"on top of the best trial so far), budget {record['budget']} trials (the "
             "parameters after the budget keep their first value), each trial up to "
             f"{record['max_epochs']} epochs with early stopping (patience "
             f"{record['fixed'].get('patience', 2)}) on validation "
             f"NDCG@10. Fixed: {record['fixed']}; every other "
             f"setting is TrainConfig's default. Machine: {os.cpu_count()} cores, "
             f"{platform.machine()}, no GPU, shared with other work (fit times are not "
             "benchmarks). Command: `.venv/bin/python benchmarks/tune.py --variant "
             f"{record['variant']} --budget {record['budget']}`.", "",
             "Space: " + "; ".join(f"{k} ∈ {v}" for k, v in record["space"].items()), "",
             f"Best: {record.get('best', 'search not finished')}", "",
             "| trial | " + " | ".join(names) + " | best val NDCG@10 | epochs | fit s |",
             "|---" * (len(names) + 4) + "|"]
    for index, trial in trials:
        lines.append(f"| {index} | " + " | ".join(str(trial["values"][n]) for n in names)
                     + f" | {trial['best_val_ndcg@10']:.4f} | {trial['selected_epochs']} | "
                     f"{trial['fit_seconds']} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
