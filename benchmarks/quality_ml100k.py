"""Quality bar on MovieLens-100K: the model against its baselines, same split, same run.

Trains the default config under each protocol (leave-one-out by time,
cold-start items, cold-start users), evaluates with full ranking and writes
docs/benchmarks/quality_ml100k.md (+ JSON). Run:

    .venv/bin/python benchmarks/quality_ml100k.py [--protocols loo cold-items cold-users]

Takes about 20 minutes on 2 CPU cores.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import tf_profiles  # noqa: F401  (Keras 2 before TensorFlow)
from tf_profiles.data.loaders import load_dataset
from tf_profiles.data.movielens import convert_ml100k
from tf_profiles.evaluation.evaluate import HEADLINE, evaluate, markdown_table
from tf_profiles.bundle.config import TrainConfig
from tf_profiles.training.trainer import train

ROOT = Path(__file__).resolve().parent.parent
# The targets of the quality bar: the model's headline metric over the best
# (loo, cold-users) or the content-only (cold-items) baseline.
TARGETS = {"loo": 1.1, "cold-users": None, "cold-items": 1.5}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocols", nargs="+", default=["loo", "cold-items", "cold-users"])
    parser.add_argument("--work-dir", default=str(ROOT / "runs" / "benchmark"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "quality_ml100k"))
    args = parser.parse_args()
    work = Path(args.work_dir)
    paths = convert_ml100k(work / "data")
    dataset = load_dataset(paths["interactions"], paths["items"], paths["users"])
    results = {}
    for protocol in args.protocols:
        config = TrainConfig(protocol=protocol)
        started = time.perf_counter()
        metrics = train(dataset, config, work / protocol)
        wall = time.perf_counter() - started
        report_dir = work / protocol
        table = evaluate(report_dir)
        report = json.loads((report_dir / "evaluation.json").read_text())
        headline = HEADLINE[protocol]
        ours = table["tf_profiles (this model)"][headline]
        others = {k: v[headline] for k, v in table.items() if k != "tf_profiles (this model)"}
        reference = (others["content-only (MiniLM cosine)"] if protocol == "cold-items"
                     else max(others.values()))
        results[protocol] = {
            "config": config.to_dict(), "fit_seconds": metrics["train_seconds"],
            "train_wall_seconds": round(wall, 1), "headline": headline,
            "ratio": ours / reference if reference else None, "target": TARGETS[protocol],
            "report": report,
        }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    lines = [f"# Quality on MovieLens-100K ({time.strftime('%Y-%m-%d')})", "",
             f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
             "no GPU. Command: `.venv/bin/python benchmarks/quality_ml100k.py`.", ""]
    for protocol, result in results.items():
        target = result["target"]
        verdict = ("" if target is None else
                   f" Target ≥ {target}×: **{'met' if result['ratio'] >= target else 'NOT met'}**.")
        compared = ("the content-only baseline" if protocol == "cold-items"
                    else "the best baseline")
        lines += [f"## {protocol}", "",
                  f"Training: {result['fit_seconds']} s fit ({result['train_wall_seconds']} s "
                  "with splitting and text embedding).",
                  f"{result['headline']} ratio to {compared}: {result['ratio']:.2f}×.{verdict}",
                  "", markdown_table(result["report"])]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
