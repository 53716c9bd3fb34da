"""Sentiment head on the frozen MiniLM encoder against VADER, on labelled reviews.

Per data set (movie reviews: IMDB + Rotten Tomatoes, 0/1; women's clothing
reviews, graded (rating - 1) / 4) a seeded 80/20 split stratified by source
and label, capped at --train-cap / --test-cap texts per set by a stratified
sample of each side. The head (tf_profiles.text.sentiment) is trained on
movie, clothing and both training sets under each label rule of --labels:

- graded: the labels as they are (3★ clothing reviews train toward 0.5);
- binary: the earlier rule, 3★ reviews dropped and 4-5★ = 1, 1-2★ = 0.

Every head and VADER's compound score are scored on the same test sets:
accuracy (head: p >= 0.5; VADER: compound >= 0.05, its documented positive
threshold) and ROC AUC on the test reviews that take a side (label != 0.5),
and, on the whole clothing test set (3★ included), how well p read as a
rating (1 + 4p) matches the stars: mean absolute error, Spearman's rho, the
mean rating given per star, and short phrases that take no side:

    .venv/bin/python benchmarks/text_sentiment.py --max-length 64 --labels graded binary

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
from scipy.stats import rankdata, spearmanr

import tf_profiles  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from tf_profiles.data import reviews
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.text.sentiment import feedback_rating, fit_sentiment_head, sentiment_scores

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "text_sentiment"
LABEL_RULES = ("graded", "binary")
# Text that takes no side, and a few that do, as a person might write them.
PHRASES = ("It was okay.", "Fine.", "Not bad, not great.", "Average movie.",
           "Watched it on Sunday.", "It's fine for the price.", "I hated it",
           "Boring and far too long.", "I loved it", "A masterpiece, wonderful acting.")


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
    """Accuracy and AUC on the texts that take a side (label != 0.5)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    polar = labels != 0.5
    positive = labels[polar] > 0.5
    return {"accuracy": float(((scores[polar] >= threshold) == positive).mean()),
            "auc": roc_auc(positive, scores[polar]), "n": int(polar.sum())}


def as_ratings(labels, scores, rated=None) -> dict:
    """How well ``scores`` read as ratings match the graded labels' stars.

    ``rated``: the scores already on the 1-5 scale (None: 1 + 4p)."""
    stars = np.rint(1 + 4 * np.asarray(labels)).astype(int)
    result = {"spearman": float(spearmanr(scores, stars)[0]), "n": int(len(stars))}
    if rated is None:
        rated = feedback_rating(np.asarray(scores, np.float64))
        result["mae_stars"] = float(np.abs(rated - stars).mean())
    result["mean_by_star"] = {int(s): float(np.mean(rated[stars == s])) for s in np.unique(stars)}
    return result


def training_labels(train, rule):
    """(texts, labels) a head trains on under a label rule (see the module doc)."""
    if rule == "binary":
        train = train[train["label"] != 0.5]
        return train, (train["label"] > 0.5).astype(np.float32).to_numpy()
    return train, train["label"].to_numpy(np.float32)


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


def positive_share(frame) -> float:
    """Share of positives among the texts that take a side."""
    polar = frame["label"] != 0.5
    return float((frame.loc[polar, "label"] > 0.5).mean())


def test_sets(data) -> dict:
    """The two test sets, plus the movie test set per source (IMDB reviews
    are long, Rotten Tomatoes snippets one sentence). Metrics read the rows
    that take a side; the clothing set keeps its 3★ rows for the ratings."""
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
        if name == "clothing":
            # Its compound lies in [-1, 1]: read as a rating, 3 + 2 * compound.
            ratings = as_ratings(test["label"], compound, rated=3 + 2 * compound)
    return {"results": results, "ratings": ratings, "phrases": {
                text: analyzer.polarity_scores(text)["compound"] for text in PHRASES},
            "seconds": round(time.perf_counter() - started, 1)}


def heads(data, tests, max_length, seeds, hidden_units, rule, cache_dir) -> dict:
    encoder = TextEncoder.from_checkpoint(max_length=max_length)
    texts = sorted({t for train, test in data.values() for t in (*train["text"], *test["text"])}
                   | set(PHRASES))
    started = time.perf_counter()
    embed_in_chunks(texts, encoder, cache_dir)  # fills the cache; timed for the record
    encode_seconds = time.perf_counter() - started

    def embed(texts):
        return embed_texts(list(texts), encoder, cache_dir)

    train_sets = {}
    for name, (train, _) in data.items():
        kept, labels = training_labels(train, rule)
        train_sets[name] = (embed(kept["text"]), labels)
    train_sets["both"] = tuple(np.concatenate(parts) for parts in zip(*train_sets.values()))
    test_vectors = {name: embed(test["text"]) for name, test in tests.items()}
    phrase_vectors = embed(PHRASES)
    runs, ratings, phrases = {}, {}, {}
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
                if test_name == "clothing":
                    ratings.setdefault(train_name, []).append(
                        dict(as_ratings(test["label"], scores), seed=seed))
            phrases.setdefault(train_name, []).append(
                dict(zip(PHRASES, sentiment_scores(head, phrase_vectors).tolist())))
            print(f"max_length={max_length} hidden={hidden_units} labels={rule} {train_name} "
                  f"seed {seed}: " + ", ".join(
                      f"{t} acc {r[-1]['accuracy']:.3f} auc {r[-1]['auc']:.3f}"
                      for t, r in runs[train_name].items())
                  + f"; clothing as ratings MAE {ratings[train_name][-1]['mae_stars']:.3f} "
                  f"rho {ratings[train_name][-1]['spearman']:.3f}", flush=True)
    summary = {train: {test: {metric: float(np.median([r[metric] for r in rows]))
                              for metric in ("accuracy", "auc")} |
                       {f"{metric}_range": [float(min(r[metric] for r in rows)),
                                            float(max(r[metric] for r in rows))]
                        for metric in ("accuracy", "auc")}
                       for test, rows in by_test.items()}
               for train, by_test in runs.items()}
    ratings_summary = {train: {
        "mae_stars": float(np.median([r["mae_stars"] for r in rows])),
        "spearman": float(np.median([r["spearman"] for r in rows])),
        "mean_by_star": {star: float(np.median([r["mean_by_star"][star] for r in rows]))
                         for star in rows[0]["mean_by_star"]}}
        for train, rows in ratings.items()}
    phrases_summary = {train: {text: float(np.median([r[text] for r in rows])) for text in PHRASES}
                       for train, rows in phrases.items()}
    return {"max_length": max_length, "hidden_units": hidden_units, "labels": rule,
            "texts_encoded": len(texts), "encode_seconds_uncached": round(encode_seconds, 1),
            "train_sizes": {name: int(len(y)) for name, (_, y) in train_sets.items()},
            "median": summary, "ratings_median": ratings_summary,
            "phrases_median": phrases_summary, "runs": runs, "ratings": ratings}


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
            lines.append(f"| head ({run['max_length']} tokens, hidden {run['hidden_units']}, "
                         f"{run['labels']} labels) trained on {train} | " + " | ".join(
                             f"{by_test[t]['accuracy']:.3f} / {by_test[t]['auc']:.3f}"
                             for t in tests) + " |")
    stars = sorted(result["vader"]["ratings"]["mean_by_star"])
    lines += ["", "Clothing test set, 3★ included, scores read as ratings:", "",
              "| scorer | MAE (stars) | Spearman | " + " | ".join(
                  f"mean rating given to {s}★" for s in stars) + " |",
              "|---|---|---|" + "---|" * len(stars)]
    vader_ratings = result["vader"]["ratings"]
    lines.append("| VADER (3 + 2·compound) | – | " + f"{vader_ratings['spearman']:.3f} | "
                 + " | ".join(f"{vader_ratings['mean_by_star'][s]:.2f}" for s in stars) + " |")
    for run in result["heads"]:
        for train, row in run["ratings_median"].items():
            lines.append(f"| head ({run['max_length']} tokens, hidden {run['hidden_units']}, "
                         f"{run['labels']} labels) trained on {train} | {row['mae_stars']:.3f} | "
                         f"{row['spearman']:.3f} | " + " | ".join(
                             f"{row['mean_by_star'][s]:.2f}" for s in stars) + " |")
    lines += ["", "Phrases, P(positive) (VADER: compound), heads trained on both:", "",
              "| phrase | VADER | " + " | ".join(
                  f"{run['labels']}, {run['max_length']} tokens" for run in result["heads"])
              + " |", "|---|---|" + "---|" * len(result["heads"])]
    for text in PHRASES:
        lines.append(f"| {text} | {result['vader']['phrases'][text]:+.2f} | " + " | ".join(
            f"{run['phrases_median']['both'][text]:.2f}" for run in result["heads"]) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-length", type=int, nargs="+", default=[64],
                        help="encoder max_length(s) to measure the head with (64: the "
                        "model's default text_max_length)")
    parser.add_argument("--hidden-units", type=int, nargs="+", default=[0])
    parser.add_argument("--labels", nargs="+", choices=LABEL_RULES, default=list(LABEL_RULES),
                        help="label rules to train heads with (see the module docstring)")
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
                     "label_rules": {
                         "graded": "movie: the package's 0/1 labels; clothing: (rating - 1) / 4",
                         "binary": "as graded, then 0.5 (3 stars) dropped and the rest "
                                   "rounded to 0/1"},
                     "clothing_text": "title + body",
                     "polar_metrics": "accuracy and AUC on test rows with label != 0.5",
                     "head_threshold": 0.5, "vader_threshold": 0.05},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "tensorflow": tf.__version__},
        "train_sets": {name: {"n": len(train), "positive_share": positive_share(train),
                              "neutral": int((train["label"] == 0.5).sum())}
                       for name, (train, _) in data.items()},
        "test_sets": {name: {"n": len(test), "positive_share": positive_share(test),
                             "neutral": int((test["label"] == 0.5).sum())}
                      for name, test in tests.items()},
    }
    result["vader"] = vader(tests)
    print("VADER", json.dumps(result["vader"]), flush=True)
    result["heads"] = [heads(data, tests, length, args.seeds, hidden, rule, args.cache_dir)
                       for length in args.max_length for hidden in args.hidden_units
                       for rule in args.labels]
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"{result['seconds']} s in all; written to {args.out}")


if __name__ == "__main__":
    main()
