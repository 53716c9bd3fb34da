"""Sentiment head on the frozen MiniLM encoder against VADER, on labelled reviews.

Per data set (movie reviews: IMDB + Rotten Tomatoes; women's clothing
reviews, rating >= 4 positive, <= 2 negative, 3 dropped) a seeded stratified
80/20 split, capped at --train-cap / --test-cap texts per set by a stratified
sample of each side. The head (tf_profiles.text.sentiment) is trained on
movie, clothing and both training sets and scored on every test set; VADER's
compound score is scored on the same test sets. Accuracy (head: p >= 0.5;
VADER: compound >= 0.05, its documented positive threshold) and ROC AUC:

    .venv/bin/python benchmarks/text_sentiment.py --max-length 128 64

Embeddings go through tf_profiles.text.cache.embed_texts (default cache
folder, or --cache-dir), so a rerun only refits the heads.
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

import tf_profiles  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from tf_profiles.data import reviews
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.text.sentiment import fit_sentiment_head, sentiment_scores

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "text_sentiment"


# === Metrics ===

def roc_auc(labels, scores) -> float:
    """Mann-Whitney AUC: P(a positive outscores a negative), ties count half."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[labels].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def metrics(labels, scores, threshold) -> dict:
    labels = np.asarray(labels)
    return {"accuracy": float(((np.asarray(scores) >= threshold) == labels).mean()),
            "auc": roc_auc(labels, scores), "n": int(len(labels))}


# === Data ===

def splits(test_fraction, train_cap, test_cap, seed):
    """{set: (train, test)} DataFrames, stratified by source and label."""
    out = {}
    for name, frame in (("movie", reviews.movie_reviews()),
                        ("clothing", reviews.clothing_reviews())):
        train, test = reviews.stratified_split(frame, test_fraction, seed)
        out[name] = (reviews.stratified_sample(train, train_cap, seed),
                     reviews.stratified_sample(test, test_cap, seed))
    return out


def test_sets(data) -> dict:
    """The two test sets, plus the movie test set per source (IMDB reviews
    are long, Rotten Tomatoes snippets one sentence)."""
    sets = {name: test for name, (_, test) in data.items()}
    movie = data["movie"][1]
    for source in sorted(movie["source"].unique()):
        sets[f"movie:{source}"] = movie[movie["source"] == source].reset_index(drop=True)
    return sets


def embed_in_chunks(texts, encoder, cache_dir, chunk=1000):
    """embed_texts in chunks: the cache is written after each call, so an
    interrupted run keeps what it encoded."""
    return np.concatenate([embed_texts(texts[start:start + chunk], encoder, cache_dir)
                           for start in range(0, len(texts), chunk)])


# === Runs ===

def vader(tests) -> dict:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    results, started = {}, time.perf_counter()
    for name, test in tests.items():
        compound = np.array([analyzer.polarity_scores(t)["compound"] for t in test["text"]])
        results[name] = metrics(test["label"], compound, 0.05)
    return {"results": results, "seconds": round(time.perf_counter() - started, 1)}


def heads(data, tests, max_length, seeds, hidden_units, cache_dir) -> dict:
    encoder = TextEncoder.from_checkpoint(max_length=max_length)
    texts = sorted({t for train, test in data.values() for t in (*train["text"], *test["text"])})
    started = time.perf_counter()
    embed_in_chunks(texts, encoder, cache_dir)  # fills the cache; timed for the record
    encode_seconds = time.perf_counter() - started

    def embed(frame):
        return embed_texts(frame["text"].tolist(), encoder, cache_dir)

    train_sets = {name: (embed(train), train["label"].to_numpy())
                  for name, (train, _) in data.items()}
    train_sets["both"] = tuple(np.concatenate(parts) for parts in zip(*train_sets.values()))
    test_vectors = {name: embed(test) for name, test in tests.items()}
    runs = {}
    for train_name, (x, y) in train_sets.items():
        for seed in seeds:
            fit_started = time.perf_counter()
            head = fit_sentiment_head(x, y, hidden_units=hidden_units, seed=seed)
            fit_seconds = time.perf_counter() - fit_started
            for test_name, test in tests.items():
                scores = sentiment_scores(head, test_vectors[test_name])
                result = metrics(test["label"], scores, 0.5)
                runs.setdefault(train_name, {}).setdefault(test_name, []).append(
                    dict(result, seed=seed, fit_seconds=round(fit_seconds, 1)))
            print(f"max_length={max_length} hidden={hidden_units} {train_name} seed {seed}: "
                  + ", ".join(f"{t} acc {r[-1]['accuracy']:.3f} auc {r[-1]['auc']:.3f}"
                              for t, r in runs[train_name].items()), flush=True)
    summary = {train: {test: {metric: float(np.median([r[metric] for r in rows]))
                              for metric in ("accuracy", "auc")} |
                       {f"{metric}_range": [float(min(r[metric] for r in rows)),
                                            float(max(r[metric] for r in rows))]
                        for metric in ("accuracy", "auc")}
                       for test, rows in by_test.items()}
               for train, by_test in runs.items()}
    return {"max_length": max_length, "hidden_units": hidden_units,
            "texts_encoded": len(texts), "encode_seconds_uncached": round(encode_seconds, 1),
            "train_sizes": {name: int(len(y)) for name, (_, y) in train_sets.items()},
            "median": summary, "runs": runs}


def table(result) -> str:
    tests = list(result["vader"]["results"])
    lines = ["| scorer | " + " | ".join(f"{t} acc / AUC" for t in tests) + " |",
             "|---|" + "---|" * len(tests)]
    majority = {t: max(r["positive_share"], 1 - r["positive_share"])
                for t, r in result["test_sets"].items()}
    lines.append("| majority class | " + " | ".join(f"{majority[t]:.3f} / 0.500" for t in tests)
                 + " |")
    vader_results = result["vader"]["results"]
    lines.append("| VADER compound (≥ 0.05) | " + " | ".join(
        f"{vader_results[t]['accuracy']:.3f} / {vader_results[t]['auc']:.3f}"
        for t in tests) + " |")
    for run in result["heads"]:
        for train, by_test in run["median"].items():
            lines.append(f"| head ({run['max_length']} tokens, hidden {run['hidden_units']}) "
                         f"trained on {train} | " + " | ".join(
                             f"{by_test[t]['accuracy']:.3f} / {by_test[t]['auc']:.3f}"
                             for t in tests) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-length", type=int, nargs="+", default=[128, 64],
                        help="encoder max_length(s) to measure the head with")
    parser.add_argument("--hidden-units", type=int, nargs="+", default=[0])
    parser.add_argument("--train-cap", type=int, default=6000)
    parser.add_argument("--test-cap", type=int, default=2000)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the head's training (the split stays fixed)")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DOC.with_suffix(".json"))
    args = parser.parse_args()

    started = time.perf_counter()
    data = splits(args.test_fraction, args.train_cap, args.test_cap, args.split_seed)
    tests = test_sets(data)
    result = {
        "protocol": {"test_fraction": args.test_fraction, "train_cap": args.train_cap,
                     "test_cap": args.test_cap, "split_seed": args.split_seed,
                     "head_seeds": args.seeds, "encoder": "all-MiniLM-L6-v2 (bundled), frozen, "
                     "mean-pooled, L2-normalised",
                     "label_rule": "movie: the package's 0/1 labels; clothing: rating >= 4 "
                     "positive, <= 2 negative, 3 dropped; title + body as text",
                     "head_threshold": 0.5, "vader_threshold": 0.05},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "tensorflow": tf.__version__},
        "train_sets": {name: {"n": len(train), "positive_share": float(train["label"].mean())}
                       for name, (train, _) in data.items()},
        "test_sets": {name: {"n": len(test), "positive_share": float(test["label"].mean())}
                      for name, test in tests.items()},
    }
    result["vader"] = vader(tests)
    print("VADER", json.dumps(result["vader"]), flush=True)
    result["heads"] = [heads(data, tests, length, args.seeds, hidden, args.cache_dir)
                       for length in args.max_length for hidden in args.hidden_units]
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"{result['seconds']} s in all; written to {args.out}")


if __name__ == "__main__":
    main()
