"""Quality on MovieLens-100K: the model, its ablations and tuned baselines.

Every method is scored on the same split, full ranking, already-seen items
masked. Same-second events are ordered by a seeded random permutation (split
seed 0; the cold-user and cold-item samples use split seeds 0..2 and 0..4;
the temporal protocol has three rolling cut-offs). Everything is chosen on
validation: the model's and SASRec+'s hyper-parameters by
``benchmarks/tune.py`` (docs/benchmarks/tune_*.md), their epochs by early
stopping, each baseline's parameters by its own grid
(``tf_profiles.evaluation.tuning``); test is scored once.

Equal data: for the test score every method fits on the same events, the
training and validation events. Counting and text baselines are refit on
them; the model and its variants are refit on them for the epochs their
validation run selected (``TrainConfig(refit=True)``), and so are the two
TFRS tutorial baselines (``tuning.tuned_scores``).

    .venv/bin/python benchmarks/quality_ml100k.py [--parts loo temporal cold-items cold-users]

Each trained run's result is kept in ``<work-dir>/results`` and reused, so an
interrupted benchmark resumes; delete that folder to start over. Writes
docs/benchmarks/quality_ml100k.{md,json}.
"""
import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path
from typing import Optional

import numpy as np

import tf_profiles  # noqa: F401  (Keras 2 before TensorFlow)
from tf_profiles.bundle.config import TrainConfig
from tf_profiles.bundle.model_dir import ModelDir, build_catalogue
from tf_profiles.data.loaders import load_dataset
from tf_profiles.data.movielens import convert_ml100k
from tf_profiles.data.splits import make_split
from tf_profiles.evaluation import tuning
from tf_profiles.evaluation.metrics import per_row_metrics, wilcoxon_signed_rank
from tf_profiles.evaluation.protocol import eval_rows
from tf_profiles.evaluation.scoring import model_scores
from tf_profiles.models.ranking import exclude
from tf_profiles.text.encoder import TextEncoder, default_checkpoint
from tf_profiles.training.trainer import train

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (0, 1, 2)
COLD_ITEM_SAMPLES = (0, 1, 2, 3, 4)
HEADLINE = {"loo": "NDCG@10", "temporal": "NDCG@10", "cold-users": "NDCG@10",
            "cold-items": "Recall@10"}
MODEL = "tf_profiles (this model)"
SASREC = "SASRec+ (item IDs, causal, full softmax)"
# Ablations: the same model and training with inputs switched off.
ABLATIONS = {
    "no text (item and user)": {"use_item_text": False, "use_user_text": False},
    "no history": {"use_history": False},
    "no user attributes": {"use_user_text": False},
    "no IDs (text + history)": {"use_item_ids": False, "use_user_ids": False},
}
NO_TEXT = "no text (item and user)"
TEXT_ONLY = "no IDs (text + history)"
# Methods trained with several seeds; the other ablations run one (time).
SEEDED = (MODEL, NO_TEXT, SASREC)
TARGETS = {"loo": 1.3, "cold-items": 1.3}
COLD_USER_SAMPLES = (0, 1, 2)
# Rolling temporal cut-offs: test periods of 5 % of events, each with the 5 %
# before it as validation, ending 0, 1 and 2 periods before the latest event.
TEMPORAL_PERIOD = 0.05
TEMPORAL_CUTOFFS = (0, 1, 2)


def _search(variant: str) -> dict:
    return json.loads((ROOT / "docs" / "benchmarks" / f"tune_{variant}.json").read_text())


def tuned(variant: str) -> dict:
    """The config ``benchmarks/tune.py --variant`` chose on validation (the
    model's are also TrainConfig's defaults; SASRec+ has its own search with
    the same space and budget)."""
    record = _search(variant)
    return {**record["fixed"], **record["best"]}


def search_epochs(variant: str) -> int:
    """The epochs early stopping selected for ``variant``'s chosen config on
    leave-one-out validation: what splits without validation events train for."""
    record = _search(variant)
    chosen = [t for t in record["trials"] if t["values"] == record["best"]]
    return chosen[0]["selected_epochs"]


class Runs:
    """Trains and scores model variants, keeping each result as JSON."""

    def __init__(self, dataset, work: Path, report_only: bool = False):
        self.dataset, self.work, self.report_only = dataset, work, report_only

    def run(self, protocol: str, name: str, overrides: dict, seed: int = 0,
            split_seed: int = 0, whole_catalogue: bool = False,
            periods_back: int = 0) -> Optional[dict]:
        """The kept result, else (unless ``report_only``: then None) a new one.

        With validation events, a first fit selects the epochs (early
        stopping) and a refit on training + validation events for those
        epochs is scored; without, one fit for ``overrides["epochs"]``.
        """
        key = f"{protocol}/{name}/seed-{seed}-split-{split_seed}-back-{periods_back}"
        result_file = self.work / "results" / f"{key}.json"
        if result_file.exists():
            return json.loads(result_file.read_text())
        if self.report_only:
            return None
        config = TrainConfig(protocol=protocol, seed=seed, split_seed=split_seed,
                             period=TEMPORAL_PERIOD if protocol == "temporal" else 0.1,
                             periods_back=periods_back, **overrides)
        folder = self.work / "models" / key
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        metrics = train(self.dataset, config, folder / "select")
        fit_seconds, selected = metrics["train_seconds"], metrics["selected_epochs"]
        scored = folder / "select"
        if len(ModelDir(scored).split().valid):
            refit = dataclasses.replace(config, refit=True, epochs=selected)
            fit_seconds += train(self.dataset, refit, folder / "refit")["train_seconds"]
            scored = folder / "refit"
        model_dir = ModelDir(scored)
        model, split = model_dir.load_model(), model_dir.split()
        result = {"config": config.to_dict(), "fit_seconds": round(fit_seconds, 1),
                  "selected_epochs": selected, "refit": scored.name == "refit",
                  "wall_seconds": round(time.perf_counter() - started, 1),
                  "test": _score(model, split, config.max_history)}
        if whole_catalogue:
            everything = dataclasses.replace(split, candidates=sorted(self.dataset.items.index))
            result["test_whole_catalogue"] = _score(model, everything, config.max_history)
        result_file.parent.mkdir(parents=True, exist_ok=True)
        result_file.write_text(json.dumps(result))
        # A model folder is ~100 MB (it carries the encoder); results suffice.
        shutil.rmtree(folder, ignore_errors=True)
        return result


def _score(model, split, max_history) -> dict:
    rows = eval_rows(split, "test", max_history)
    scores = exclude(model_scores(model, rows), rows.seen)
    return {"users": rows.users.tolist(),
            "per_user": {k: v.tolist() for k, v in per_row_metrics(scores, rows.targets).items()}}


def _summary(results) -> dict:
    """Mean ± std over runs of each metric, and the per-user mean over runs."""
    metrics = results[0]["per_user"].keys()
    per_run = {m: [float(np.mean(r["per_user"][m])) for r in results] for m in metrics}
    return {
        "runs": len(results),
        "mean": {m: statistics.fmean(v) for m, v in per_run.items()},
        "std": {m: statistics.stdev(v) if len(v) > 1 else 0.0 for m, v in per_run.items()},
        "per_user": {m: np.mean([r["per_user"][m] for r in results], axis=0)
                     for m in metrics},
    }


def baseline_results(runs: "Runs", split, max_history, context,
                     candidates="held-out", periods_back: int = 0) -> dict:
    """Every baseline of the split's protocol tuned on its validation rows
    (``tuning.validation_rows``) and scored once on its test (kept as JSON
    beside the trained runs' results)."""
    back = f"-back-{periods_back}" if split.protocol == "temporal" else ""
    result_file = (runs.work / "results" / split.protocol
                   / f"baselines-{candidates}-split-{split.seed}{back}.json")
    if result_file.exists():
        return json.loads(result_file.read_text())
    valid_rows = tuning.validation_rows(split, max_history, candidates=candidates)
    test_rows = eval_rows(split, "test", max_history)
    results = {}
    for name in tuning.baselines_for(split.protocol):
        started = time.perf_counter()
        tuned = tuning.tune(name, valid_rows, **context)
        scores = exclude(tuning.tuned_scores(name, tuned.params, test_rows,
                                             **context), test_rows.seen)
        title = tuning.REGISTRY[name].title
        results[title] = {
            "params": tuned.params,
            "trials": [{"params": t.params, "valid": t.metrics[HEADLINE[split.protocol]]}
                       for t in tuned.trials],
            "seconds": round(time.perf_counter() - started, 1),
            "test": {"users": test_rows.users.tolist(),
                     "per_user": {k: v.tolist() for k, v in
                                  per_row_metrics(scores, test_rows.targets).items()}}}
        print(f"{split.protocol} {title}: {tuned.params} → test {HEADLINE[split.protocol]} "
              f"{np.mean(results[title]['test']['per_user'][HEADLINE[split.protocol]]):.4f}")
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(results))
    return results


def _per_user(result, metric):
    return np.asarray(result["per_user"][metric])


def compare(protocol, slices) -> dict:
    """The table of one protocol over its slices (seeds of one split, or
    cut-offs / user samples): summaries, the model's ratio to the best
    baseline and paired tests (per-user headline metric, Wilcoxon, pooled
    over every slice's test users).

    Args:
      slices: [(methods {name: [runs]}, baselines {title: result})], one per
        cut-off or sample; a method's runs within a slice are seeds.
    """
    headline = HEADLINE[protocol]
    tables = []
    for methods, baselines in slices:
        users = baselines[next(iter(baselines))]["test"]["users"]
        # Runs a --report-only pass found missing are left out of the table.
        methods = {name: [run for run in runs if run is not None]
                   for name, runs in methods.items()}
        methods = {name: runs for name, runs in methods.items() if runs}
        for runs in methods.values():
            if any(run["test"]["users"] != users for run in runs):
                raise RuntimeError(f"{protocol}: methods were scored on different users")
        rows = {name: _summary([run["test"] for run in runs]) for name, runs in methods.items()}
        rows.update({name: _summary([result["test"]]) for name, result in baselines.items()})
        tables.append({"users": users, "rows": rows, "methods": methods,
                       "baselines": baselines})
    names = [n for n in tables[0]["rows"] if all(n in t["rows"] for t in tables)]
    baseline_names = [n for n in names if n in tables[0]["baselines"]]
    rows = {}
    for name in names:
        per_slice = [t["rows"][name] for t in tables]
        metrics = per_slice[0]["mean"].keys()
        if len(tables) == 1:  # seeds of one split: their mean ± std
            mean, std = per_slice[0]["mean"], per_slice[0]["std"]
        else:  # over cut-offs or samples (each slice's mean over its runs)
            mean = {m: statistics.fmean(r["mean"][m] for r in per_slice) for m in metrics}
            std = {m: statistics.stdev(r["mean"][m] for r in per_slice) for m in metrics}
        rows[name] = {
            "runs": sum(r["runs"] for r in per_slice), "mean": mean, "std": std,
            "per_slice": [r["mean"][headline] for r in per_slice],
            "per_user": np.concatenate([r["per_user"][headline] for r in per_slice])}
    best = max(baseline_names, key=lambda name: rows[name]["mean"][headline])
    model = rows[MODEL]["per_user"]
    tests = {}
    for other in (best, SASREC, NO_TEXT):
        if other in rows:
            difference = model - rows[other]["per_user"]
            statistic, p = wilcoxon_signed_rank(model, rows[other]["per_user"])
            tests[other] = {"W": statistic, "p": p, "mean_difference": float(np.mean(difference)),
                            "standard_error": float(np.std(difference, ddof=1)
                                                    / np.sqrt(len(difference)))}
    return {
        "headline": headline, "test_users": sum(len(t["users"]) for t in tables),
        "slices": len(tables), "best_baseline": best,
        "ratio": rows[MODEL]["mean"][headline] / rows[best]["mean"][headline],
        "paired_tests": tests,
        "methods": {name: {k: v for k, v in row.items() if k != "per_user"}
                    for name, row in rows.items()},
        "fit_seconds": {name: [run["fit_seconds"] for t in tables for run in t["methods"][name]]
                        for name in tables[0]["methods"]},
        "selected_epochs": {name: [run["selected_epochs"] for t in tables
                                   for run in t["methods"][name]]
                            for name in tables[0]["methods"]},
        # What producing the table took (training, scoring, baseline searches),
        # summed over the kept results, so a resumed run still counts it all.
        "total_seconds": round(sum(run["wall_seconds"] for t in tables
                                   for runs in t["methods"].values() for run in runs)
                               + sum(b["seconds"] for t in tables
                                     for b in t["baselines"].values()), 1),
        "refit": {name: all(run.get("refit", False) for t in tables
                            for run in t["methods"][name])
                  for name in tables[0]["methods"]},
        "baselines": {name: {"params": [t["baselines"][name]["params"] for t in tables],
                             "trials": len(tables[0]["baselines"][name]["trials"]),
                             "seconds": [t["baselines"][name]["seconds"] for t in tables]}
                      for name in baseline_names},
    }


def _split(dataset, protocol, seed=0, periods_back=0):
    return make_split(protocol, dataset.interactions, seed=seed,
                      item_ids=list(dataset.items.index),
                      period=TEMPORAL_PERIOD if protocol == "temporal" else 0.1,
                      periods_back=periods_back)


def part_loo(runs: Runs, dataset, context, ablations=tuple(ABLATIONS)) -> dict:
    baselines = baseline_results(runs, _split(dataset, "loo"), TrainConfig().max_history,
                                 context)
    methods = {MODEL: [runs.run("loo", MODEL, tuned("model"), seed) for seed in SEEDS],
               SASREC: [runs.run("loo", SASREC, tuned("sasrec"), seed) for seed in SEEDS]}
    for name in ablations:
        seeds = SEEDS if name in SEEDED else SEEDS[:1]
        methods[name] = [runs.run("loo", name, {**tuned("model"), **ABLATIONS[name]}, seed)
                         for seed in seeds]
    return compare("loo", [(methods, baselines)])


def part_temporal(runs: Runs, dataset, context) -> dict:
    slices = []
    for back in TEMPORAL_CUTOFFS:
        methods = {MODEL: [runs.run("temporal", MODEL, tuned("model"), periods_back=back)],
                   SASREC: [runs.run("temporal", SASREC, tuned("sasrec"), periods_back=back)]}
        slices.append((methods, baseline_results(
            runs, _split(dataset, "temporal", periods_back=back), TrainConfig().max_history,
            context, periods_back=back)))
    return compare("temporal", slices)


def part_cold_users(runs: Runs, dataset, context) -> dict:
    # The split has no validation events: each trained method trains for the
    # epochs it selected on leave-one-out validation.
    slices = []
    for sample in COLD_USER_SAMPLES:
        methods = {
            MODEL: [runs.run("cold-users", MODEL, {**tuned("model"),
                                                   "epochs": search_epochs("model")},
                             split_seed=sample)],
            SASREC: [runs.run("cold-users", SASREC, {**tuned("sasrec"),
                                                     "epochs": search_epochs("sasrec")},
                              split_seed=sample)]}
        slices.append((methods, baseline_results(
            runs, _split(dataset, "cold-users", sample), TrainConfig().max_history, context)))
    return compare("cold-users", slices)


def part_cold_items(runs: Runs, dataset, context) -> dict:
    epochs = search_epochs("model")
    samples = []
    for sample in COLD_ITEM_SAMPLES:
        methods = {name: [runs.run("cold-items", name,
                                   {**tuned("model"), **switches, "epochs": epochs},
                                   split_seed=sample, whole_catalogue=True)]
                   for name, switches in ((MODEL, {}), (TEXT_ONLY, ABLATIONS[TEXT_ONLY]))}
        if any(run[0] is None for run in methods.values()):
            continue  # --report-only: this sample was not trained
        split = _split(dataset, "cold-items", sample)
        held_out = compare("cold-items", [(methods, baseline_results(
            runs, split, TrainConfig().max_history, context))])
        everything = dataclasses.replace(split, candidates=sorted(dataset.items.index))
        whole = compare("cold-items", [({
            name: [{**run[0], "test": run[0]["test_whole_catalogue"]}]
            for name, run in methods.items()}, baseline_results(
                runs, everything, TrainConfig().max_history, context, candidates="catalogue"))])
        samples.append({"held_out_candidates": held_out, "whole_catalogue": whole})
    if not samples:
        return {"samples": []}
    return {"samples": samples, **{
        view: _over_samples([sample[view] for sample in samples])
        for view in ("held_out_candidates", "whole_catalogue")}}


def _over_samples(tables) -> dict:
    """Mean ± std over the item samples of each method's headline metric."""
    headline = tables[0]["headline"]
    names = tables[0]["methods"]
    values = {name: [t["methods"][name]["mean"][headline] for t in tables] for name in names}
    best = max((n for n in names if n in tables[0]["baselines"]),
               key=lambda n: statistics.fmean(values[n]))
    return {"headline": headline, "best_baseline": best,
            "ratio": statistics.fmean(values[MODEL]) / statistics.fmean(values[best]),
            "methods": {n: {"mean": statistics.fmean(v),
                            "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                            "per_sample": v} for n, v in values.items()}}


PARTS = {"loo": part_loo, "temporal": part_temporal, "cold-users": part_cold_users,
         "cold-items": part_cold_items}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument("--ablations", nargs="*", choices=list(ABLATIONS),
                        default=list(ABLATIONS),
                        help="leave-one-out ablations to train (default: all)")
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables from the kept results; train nothing")
    parser.add_argument("--work-dir", default=str(ROOT / "runs" / "benchmark"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "quality_ml100k"))
    args = parser.parse_args()
    work, out = Path(args.work_dir), Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = convert_ml100k(work / "data")
    dataset = load_dataset(paths["interactions"], paths["items"], paths["users"])
    catalogue = build_catalogue(dataset, TextEncoder.from_checkpoint(default_checkpoint()),
                                cache_dir=None)
    context = {"item_text": catalogue.item_text_by_id()}
    report = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(
        ".json").exists() else {}
    started = time.perf_counter()
    for part in args.parts:
        extra = {"ablations": args.ablations} if part == "loo" else {}
        report[part] = PARTS[part](Runs(dataset, work, args.report_only), dataset, context,
                                   **extra)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(f"benchmark wall time {time.perf_counter() - started:.0f} s")
    out.with_suffix(".md").write_text(markdown(report))
    print(out.with_suffix(".md").read_text())


COLUMNS = ("NDCG@10", "Recall@10", "HR@10", "Recall@50", "MRR")
DESCRIPTION = {
    "loo": "leave-one-out: each user's last event is the test, the one before it "
           "validation; candidates: the whole catalogue; split seed 0; mean ± std over "
           "model seeds where runs > 1",
    "temporal": "global temporal, three rolling cut-offs: test periods of the last 5 % of "
                "events, then the 5 % before, then the 5 % before that (later events "
                "dropped), each with the 5 % of events just before it as validation; users "
                "with earlier events are tested on their new items; mean ± std over the "
                "cut-offs",
    "cold-users": "10 % of users keep only their first 3 events; their 4th is the test; "
                  "three user samples (split seeds 0, 1, 2); no validation events: baselines "
                  "are tuned on each training user's last training event, trained methods "
                  "train for the epochs they selected on leave-one-out; mean ± std over "
                  "the samples",
}
FIT_ON = ("Every method fits the same events for its test score: training + validation "
          "(counting and text baselines refit; the model, its ablations, SASRec+ and the "
          "TFRS tutorial baselines refit for the epochs their validation run selected).")


def _cell(row, metric):
    if row["runs"] > 1:
        return f"{row['mean'][metric]:.4f} ± {row['std'][metric]:.4f}"
    return f"{row['mean'][metric]:.4f}"


def _protocol_section(protocol, table) -> list:
    lines = [f"## {protocol}", "", f"Protocol: {DESCRIPTION[protocol]}; same-second events "
             f"in a seeded random order; {table['test_users']} test users in all; full "
             f"ranking, seen items masked. {FIT_ON}", "",
             "| method | runs | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name, row in sorted(table["methods"].items(),
                            key=lambda item: -item[1]["mean"][table["headline"]]):
        lines.append(f"| {name} | {row['runs']} | "
                     + " | ".join(_cell(row, m) for m in COLUMNS) + " |")
    headline, target = table["headline"], TARGETS.get(protocol)
    verdict = "" if target is None else (
        f" Target ≥ {target}×: **{'met' if table['ratio'] >= target else 'NOT met'}**.")
    lines += ["", f"{headline}: the model / the best tuned baseline ({table['best_baseline']}) "
              f"= **{table['ratio']:.3f}×**.{verdict}"]
    if table["slices"] > 1:
        for name in (MODEL, SASREC, table["best_baseline"]):
            per_slice = table["methods"][name]["per_slice"]
            lines.append(f"- {name}, {headline} per cut-off/sample: "
                         + ", ".join(f"{v:.4f}" for v in per_slice))
    pooled = " (pooled over every cut-off/sample)" if table["slices"] > 1 else ""
    for other, test in table["paired_tests"].items():
        within = abs(test["mean_difference"]) <= 2 * test["standard_error"]
        lines.append(f"- model vs {other}: mean per-user {headline} difference "
                     f"{test['mean_difference']:+.4f} (standard error "
                     f"{test['standard_error']:.4f}{': a tie' if within else ''}), "
                     f"Wilcoxon signed-rank p = {test['p']:.2g}{pooled}")
    for name, seconds in table["fit_seconds"].items():
        lines.append(f"- {name}: fit {', '.join(f'{s:.0f}' for s in seconds)} s (selection"
                     f"{' + refit' if table['refit'].get(name) else ''}), epochs selected "
                     f"{table['selected_epochs'][name]}")
    lines.append(f"- total time of this protocol's runs (trained methods' fits and scoring, "
                 f"baseline searches): {table['total_seconds'] / 60:.0f} min")
    lines += ["", "Baselines (each tuned on validation; grid size and choice per "
              "cut-off/sample):", ""]
    for name, baseline in table["baselines"].items():
        lines.append(f"- {name}: {baseline['trials']} trials → "
                     + "; ".join(str(p) for p in baseline["params"]))
    return lines + [""]


def _cold_items_section(part) -> list:
    lines = ["## cold-items", "",
             f"Protocol: 15 % of items held out with all their events, {len(part['samples'])} "
             "random item samples (split seeds "
             f"{', '.join(map(str, COLD_ITEM_SAMPLES))}); the trained models never see a "
             "held-out item and train for the epochs the model selected on leave-one-out; "
             "content baselines tuned on a validation of warm items held out from training. "
             "Recall@10 mean ± std over the samples.", ""]
    for view, title in (("held_out_candidates", "ranked among the held-out items"),
                        ("whole_catalogue", "ranked among the whole catalogue (warm + cold)")):
        table = part[view]
        lines += [f"### {title}", "", "| method | Recall@10 | per sample |", "|---|---|---|"]
        for name, row in sorted(table["methods"].items(), key=lambda item: -item[1]["mean"]):
            lines.append(f"| {name} | {row['mean']:.4f} ± {row['std']:.4f} | "
                         + ", ".join(f"{v:.3f}" for v in row["per_sample"]) + " |")
        verdict = "" if view != "held_out_candidates" else (
            f" Target ≥ {TARGETS['cold-items']}×: "
            f"**{'met' if table['ratio'] >= TARGETS['cold-items'] else 'NOT met'}**.")
        lines += ["", f"Model / best baseline ({table['best_baseline']}) = "
                  f"**{table['ratio']:.3f}×**.{verdict}", ""]
    return lines


def markdown(report) -> str:
    lines = [f"# Quality on MovieLens-100K ({time.strftime('%Y-%m-%d')})", "",
             f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
             "no GPU. Command: `.venv/bin/python benchmarks/quality_ml100k.py`. Everything "
             "is chosen on validation (model: docs/benchmarks/tune_model.md, "
             f"{len(_search('model')['trials'])} trials; SASRec+: tune_sasrec.md, the same "
             f"space, {len(_search('sasrec')['trials'])} trials; epochs by early stopping; "
             "baselines: their grids below); test is scored once. Fit times "
             "include the per-epoch validation; some runs shared the 2 cores with other "
             "jobs, so the larger times are not the model's speed.", ""]
    for protocol in ("loo", "temporal", "cold-users"):
        if protocol in report:
            lines += _protocol_section(protocol, report[protocol])
        else:
            lines += [f"## {protocol}", "", f"Not run yet with the causal recipe: "
                      f"`--parts {protocol}` (the per-event recipe's figures: "
                      "quality_ml100k_per_event.md).", ""]
    if report.get("cold-items", {}).get("samples"):
        lines += _cold_items_section(report["cold-items"])
    else:
        lines += ["## cold-items", "", "Not run yet with the causal recipe (5 item samples × "
                  "the model and a text-only two-tower): `--parts cold-items` (the per-event "
                  "recipe's figures: quality_ml100k_per_event.md).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
