"""Request-time intent on MovieLens-100K: does ``user_text`` steer the recommendations?

The default model (``query_fraction=0``) and models trained with pseudo-queries
(:mod:`tf_profiles.features.queries`) are trained on the same leave-one-out
split (split seed 0) with the same seeds and the per-event recipe's tuned
config (``PER_EVENT_MODEL``: pseudo-queries need that recipe), with the real
MiniLM. For each:

- steerability: for each genre, a query naming it ("a horror movie") and a
  paraphrase without the genre word ("something scary for tonight"), sent as
  every test user's ``user_text`` with their latest history: the genre's
  share of the top-10 (full ranking, seen items masked), against the share
  without a query; how personal the lists stay (mean Jaccard overlap of two
  users' top-10s, the overlap with the user's own top-10 without a query);
  NDCG@10 of the held-out item for the users whose held-out item has the
  queried genre (the query is then a true intent);
- NDCG@10 of the normal test, no query, and the paired Wilcoxon test per user;
- Chinese queries, and one export per model answering ``serving_default`` with
  an English and a Chinese query end to end.

Scores are ``model.user_embedding`` · ``model.item_embedding``: the
computation ``serving_default`` runs (tests/export/test_request_text.py
checks that the export answers the same).

    .venv/bin/python benchmarks/text_intent.py [--fractions 0.2] [--seeds 0]

Each run's result is kept in ``<work-dir>/results`` and reused, so an
interrupted benchmark resumes; delete that folder to start over. Writes
docs/benchmarks/text_intent.json and docs/benchmarks/text_signals_intent.md.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tf_profiles  # noqa: E402,F401  (Keras 2 before TensorFlow)
import tensorflow as tf  # noqa: E402

from benchmarks.quality_ml100k import tuned  # noqa: E402
from tf_profiles.bundle.config import PER_EVENT, TrainConfig  # noqa: E402
from tf_profiles.bundle.inference import item_embeddings  # noqa: E402
from tf_profiles.bundle.model_dir import ModelDir  # noqa: E402
from tf_profiles.data.loaders import load_dataset  # noqa: E402
from tf_profiles.data.movielens import convert_ml100k  # noqa: E402
from tf_profiles.evaluation.metrics import per_row_metrics, wilcoxon_signed_rank  # noqa: E402
from tf_profiles.evaluation.protocol import eval_rows  # noqa: E402
from tf_profiles.features import spec  # noqa: E402
from tf_profiles.models.ranking import exclude, top_k  # noqa: E402
from tf_profiles.export.versions import export_model  # noqa: E402
from tf_profiles.training.trainer import train  # noqa: E402

# Genre → (a query naming it, a paraphrase without the genre word).
QUERIES = {
    "Action": ("an action movie", "explosions and car chases"),
    "Comedy": ("a comedy", "something funny to make me laugh"),
    "Horror": ("a horror movie", "something scary for tonight"),
    "Romance": ("a romance", "a love story"),
    "Sci-Fi": ("a sci-fi movie", "spaceships, aliens and the future"),
    "Western": ("a western", "cowboys, horses and gunfights"),
    "War": ("a war movie", "soldiers on the battlefield"),
    "Children's": ("a children's movie", "something the kids can watch"),
    "Documentary": ("a documentary", "true stories about real people"),
    "Musical": ("a musical", "lots of singing and dancing"),
}
CHINESE = {"Horror": "恐怖片", "Comedy": "喜剧片", "Romance": "爱情片", "Sci-Fi": "科幻电影",
           "War": "战争片"}
OBSERVATIONS = "\n## Observations\n"
K = 10
DEFAULT = "default"


def _queries():
    """[(kind, genre, text)] of every query the benchmark sends."""
    out = []
    for genre, (named, paraphrase) in QUERIES.items():
        if genre.lower().replace("'s", "") in paraphrase.lower():
            raise ValueError(f"the paraphrase {paraphrase!r} names the genre {genre}")
        out += [("named", genre, named), ("paraphrase", genre, paraphrase)]
    return out + [("chinese", genre, text) for genre, text in CHINESE.items()]


def _method(fraction: float) -> str:
    return DEFAULT if fraction == 0 else f"query_fraction={fraction:g}"


# Pseudo-queries need the per-event recipe: its values and its search's choice
# (docs/benchmarks/tune_per_event.md), the model these figures were measured on.
PER_EVENT_MODEL = {**PER_EVENT, **tuned("per_event")}


# === One run: train, score, steer ===

def run(dataset, work: Path, fraction: float, seed: int) -> dict:
    key = f"{_method(fraction)}/seed-{seed}"
    result_file = work / "results" / f"{key}.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    config = TrainConfig(protocol="loo", seed=seed, split_seed=0,
                         **{**PER_EVENT_MODEL, "query_fraction": fraction})
    folder = work / "models" / key
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    metrics = train(dataset, config, folder)
    model_dir = ModelDir(folder)
    model, split = model_dir.load_model(), model_dir.split()
    result = {"config": config.to_dict(), "fit_seconds": metrics["train_seconds"],
              "epoch_seconds": metrics["epoch_seconds"],
              "selected_epochs": metrics["selected_epochs"]}
    scored = time.perf_counter()
    result.update(steer(model, split, dataset, config.max_history))
    result["steer_seconds"] = round(time.perf_counter() - scored, 1)
    result["served"] = served_answers(folder, work / "exports" / key, dataset)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(result, ensure_ascii=False))
    shutil.rmtree(folder, ignore_errors=True)  # ~100 MB each (the encoder)
    shutil.rmtree(work / "exports" / key, ignore_errors=True)
    return result


def _genre_matrix(dataset, candidates) -> dict:
    tags = dataset.items["tags"].fillna("").astype(str)
    tags_of = dict(zip(dataset.items["item_id"].astype(str), tags))
    return {genre: np.array([genre in tags_of[c].split("|") for c in candidates])
            for genre in QUERIES}


def _jaccard_between_users(top, rng, pairs=3000):
    # Mean overlap of two random users' top-k sets: 1 = everybody gets the same list.
    first, second = rng.integers(len(top), size=(2, pairs))
    keep = first != second
    return float(np.mean([len(set(top[a]) & set(top[b])) / len(set(top[a]) | set(top[b]))
                          for a, b in zip(first[keep], second[keep])]))


def steer(model, split, dataset, max_history) -> dict:
    """Test NDCG@10 without a query, and every query's effect on the top-10."""
    rows = eval_rows(split, "test", max_history)
    items = item_embeddings(model, rows.candidates)
    genres = _genre_matrix(dataset, rows.candidates)
    # Traced once for every query (inference.user_embeddings traces per call).
    embed = tf.function(model.user_embedding, reduce_retracing=True)
    histories = {k: tf.constant(v.astype(str) if v.dtype == object else v)
                 for k, v in rows.histories.items()}

    def ranked(text):
        texts = np.full(len(rows.users), "" if text is None else text, dtype=object)
        users = embed({**histories, spec.USER_TEXT: tf.constant(texts.astype(str))}).numpy()
        scores = exclude(users @ items.T, rows.seen)
        return scores, top_k(scores, K)[0]

    plain_scores, plain_top = ranked(None)
    plain = per_row_metrics(plain_scores, rows.targets)
    target_genres = {g: np.array([m[t].any() for t in rows.targets]) for g, m in genres.items()}
    rng = np.random.default_rng(0)
    out = {"users": rows.users.tolist(),
           "per_user": {k: v.tolist() for k, v in plain.items()},
           "catalogue_share": {g: float(m.mean()) for g, m in genres.items()},
           "share_without_query": {g: float(m[plain_top].mean()) for g, m in genres.items()},
           "jaccard_between_users_without_query": _jaccard_between_users(plain_top, rng),
           "queries": []}
    for kind, genre, text in _queries():
        scores, top = ranked(text)
        ndcg = per_row_metrics(scores, rows.targets, cutoffs=(K,))[f"NDCG@{K}"]
        intent = target_genres[genre]
        out["queries"].append({
            "kind": kind, "genre": genre, "text": text,
            "share": float(genres[genre][top].mean()),
            "jaccard_between_users": _jaccard_between_users(top, rng),
            "overlap_with_own_list": float(np.mean(
                [len(set(a) & set(b)) / K for a, b in zip(top, plain_top)])),
            "intent_users": int(intent.sum()),
            "intent_ndcg": float(ndcg[intent].mean()) if intent.any() else None,
            "intent_ndcg_without_query": (float(plain[f"NDCG@{K}"][intent].mean())
                                          if intent.any() else None)})
    return out


def served_answers(folder: Path, export_base: Path, dataset, users=("1", "2")) -> dict:
    """serving_default of an export, end to end, for two stored users and a
    request with no text, an English and a Chinese query (titles of the top 5)."""
    shutil.rmtree(export_base, ignore_errors=True)
    version = export_model(folder, export_base, k=K, log=lambda _: None)
    loaded = tf.saved_model.load(str(version))
    title = dict(zip(dataset.items["item_id"].astype(str), dataset.items["title"]))
    answers = {}
    for text in ("", QUERIES["Horror"][0], QUERIES["Horror"][1], CHINESE["Horror"]):
        out = loaded.signatures[spec.SERVING_DEFAULT](
            user_id=tf.constant(list(users)), history=tf.constant([[""]] * len(users)),
            user_text=tf.constant([text] * len(users)))
        answers[text or "(none: stored text)"] = {
            user: [title[i.decode()] for i in ids[:5]]
            for user, ids in zip(users, out["item_ids"].numpy())}
    return answers


def epoch_cost(dataset, work: Path, steps: int = 30, rounds: int = 3) -> dict:
    """Seconds per training step of one model on the same batches without and
    with queries, interleaved (rounds × variants) so that other load on the
    machine hits every variant alike; the epoch times of the fits above are
    not comparable when the machine was shared. Queries are embedded once
    before fit, as the trainer does (``_texts_embedded_once``), and, for
    comparison, by the encoder in every step."""
    result_file = work / "results" / "epoch_cost.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    import contextlib

    from tf_profiles.bundle.model_dir import build_catalogue
    from tf_profiles.data.splits import make_split
    from tf_profiles.features.queries import with_queries
    from tf_profiles.text.encoder import TextEncoder
    from tf_profiles.training.trainer import (_examples, _texts_embedded_once, build_model,
                                              build_preprocessor, input_pipeline)

    config = TrainConfig(**PER_EVENT_MODEL)
    split = make_split("loo", dataset.interactions, seed=0, item_ids=list(dataset.items.index))
    encoder = TextEncoder.from_checkpoint(max_length=config.text_max_length)
    catalogue = build_catalogue(dataset, encoder)
    plain = _examples(split, catalogue, config.max_history, with_text=False)
    with_query = with_queries(plain, catalogue.items, 0.2, 0)
    tf.keras.utils.set_random_seed(0)
    preprocessor = build_preprocessor(
        config, catalogue, sorted(split.train["item_id"].unique()),
        sorted(split.train["user_id"].unique()), encoder)
    model = build_model(config, preprocessor)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    variants = {  # name: (examples, the context fit runs in)
        DEFAULT: (plain, contextlib.nullcontext),
        "query_fraction=0.2": (with_query, lambda: _texts_embedded_once(
            preprocessor, with_query, False, None)),
        "query_fraction=0.2, encoded in every step": (with_query, contextlib.nullcontext)}
    batches = {name: input_pipeline(examples, config.batch_size, 0).take(steps).cache()
               for name, (examples, _) in variants.items()}
    seconds = {name: [] for name in batches}
    for _ in range(rounds):
        for name, data in batches.items():
            with variants[name][1]():
                model.train_function = None  # each variant traces its own step
                model.fit(data.take(2), epochs=1, verbose=0)  # traces
                started = time.perf_counter()
                model.fit(data, epochs=1, verbose=0)
                seconds[name].append((time.perf_counter() - started) / steps)
    steps_per_epoch = -(-len(plain[spec.ITEM_ID]) // config.batch_size)
    result = {name: {"seconds_per_step": values, "median": float(np.median(values)),
                     "epoch_seconds": float(np.median(values)) * steps_per_epoch}
              for name, values in seconds.items()}
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(result))
    return result


# === Report ===

def _tokens(texts) -> dict:
    """How the encoder's tokenizer reads each query (MiniLM's vocabulary lacks
    most CJK characters)."""
    from tf_profiles.text.encoder import TextEncoder

    tokenizer = TextEncoder.from_checkpoint().tokenizer
    vocab = tokenizer.vocab_list
    return {text: [vocab[i] for i in tokenizer(tf.constant([text]))["input_ids"].numpy()[0]
                   if vocab[i] not in ("[CLS]", "[SEP]", "[PAD]")] for text in texts}


def _mean(values):
    # None: no user had a held-out item of the genre.
    return None if any(v is None for v in values) else statistics.fmean(values)


def summarise(results: dict) -> dict:
    """results: method → [per-seed run results] → the report's tables."""
    methods = list(results)
    users = results[methods[0]][0]["users"]
    if any(r["users"] != users for runs in results.values() for r in runs):
        raise RuntimeError("methods were scored on different users")
    per_user = {m: np.mean([r["per_user"]["NDCG@10"] for r in runs], axis=0)
                for m, runs in results.items()}
    report = {"test_users": len(users), "methods": {}, "paired_tests": {}}
    for method, runs in results.items():
        ndcg = [float(np.mean(r["per_user"]["NDCG@10"])) for r in runs]
        recall = [float(np.mean(r["per_user"]["Recall@10"])) for r in runs]
        steering = {}
        for index, query in enumerate(runs[0]["queries"]):
            values = {key: _mean([r["queries"][index][key] for r in runs])
                      for key in ("share", "jaccard_between_users", "overlap_with_own_list",
                                  "intent_ndcg", "intent_ndcg_without_query")}
            steering[f"{query['kind']}|{query['genre']}"] = {
                **{k: query[k] for k in ("kind", "genre", "text", "intent_users")},
                **values, "share_without_query": statistics.fmean(
                    r["share_without_query"][query["genre"]] for r in runs),
                "catalogue_share": runs[0]["catalogue_share"][query["genre"]]}
        report["methods"][method] = {
            "seeds": [r["config"]["seed"] for r in runs],
            "query_fraction": runs[0]["config"]["query_fraction"],
            "NDCG@10": {"mean": statistics.fmean(ndcg), "per_seed": ndcg},
            "Recall@10": {"mean": statistics.fmean(recall), "per_seed": recall},
            "fit_seconds": [r["fit_seconds"] for r in runs],
            "wall_seconds": [r["wall_seconds"] for r in runs],
            "epoch_seconds": [r["epoch_seconds"] for r in runs],
            "selected_epochs": [r["selected_epochs"] for r in runs],
            "jaccard_between_users_without_query": statistics.fmean(
                r["jaccard_between_users_without_query"] for r in runs),
            "steering": steering,
            "served": runs[0]["served"],
        }
    for method in methods:
        if method != DEFAULT and DEFAULT in per_user:
            statistic, p = wilcoxon_signed_rank(per_user[method], per_user[DEFAULT])
            report["paired_tests"][method] = {
                "W": statistic, "p": p,
                "mean_difference": float(np.mean(per_user[method] - per_user[DEFAULT]))}
    report["tokens"] = _tokens([t for _, _, t in _queries()])
    return report


def _mean_by_kind(steering: dict, key: str, kind: str) -> float:
    values = [v[key] for v in steering.values() if v["kind"] == kind and v[key] is not None]
    return statistics.fmean(values) if values else float("nan")


def markdown(report: dict, command: str, wall: float) -> str:
    methods = report["methods"]
    lines = [
        f"# Request-time intent: `user_text` steers `serving_default` "
        f"({time.strftime('%Y-%m-%d')})", "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, no GPU; "
        f"encoder: all-MiniLM-L6-v2 (frozen), the only one shipped here. Command: `{command}`. "
        f"Time: each run (fit, steering, export) took "
        + ", ".join(f"{name} {', '.join(f'{s / 60:.0f}' for s in m['wall_seconds'])} min"
                    for name, m in methods.items())
        + f"; this invocation {wall / 60:.0f} min (kept runs are reused).", "",
        "## Protocol", "",
        "ml-100k leave-one-out (split seed 0; each user's last event is the test, the one "
        f"before it validation; {report['test_users']} test users), the tuned config of "
        "quality_ml100k.md, epochs by early stopping on validation NDCG@10 (no query). "
        "Methods differ only in `query_fraction`: the share of training examples whose user "
        "text is a pseudo-query from the target item's genres or title "
        "(`tf_profiles/features/queries.py`: \"something horror\", \"comedy and romance "
        "please\", \"more like the usual suspects\"), replacing the stored attribute text "
        "(a request sends only the query, and the query replaces the stored text "
        "embedding there too). Same split and seeds for every method.", "",
        "Steering: every test user, their latest history, `user_text` = the query; "
        "full ranking over the 1682 items, seen items masked; *share* = the genre's share "
        "of the top-10, averaged over users. *Named* queries contain the genre word; "
        "*paraphrases* do not (and no training query is a paraphrase: they test what the "
        "encoder's semantics carry). *Jaccard* = mean overlap of two random users' top-10s "
        "(1: everyone gets the same list); *own* = overlap with the user's own top-10 "
        "without a query. *Intent NDCG* = NDCG@10 of the held-out item, over the users "
        "whose held-out item has the queried genre (the query is then a true intent).", "",
        "## Accuracy without a query (the normal test)", "",
        "| method | seeds | NDCG@10 | Recall@10 | fit (s) | epochs | train s/epoch |",
        "|---|---|---|---|---|---|---|"]
    for name, m in methods.items():
        epochs = [s for run in m["epoch_seconds"] for s in run[1:]]  # the first traces
        lines.append(
            f"| {name} | {', '.join(map(str, m['seeds']))} | {m['NDCG@10']['mean']:.4f} "
            f"({', '.join(f'{v:.4f}' for v in m['NDCG@10']['per_seed'])}) | "
            f"{m['Recall@10']['mean']:.4f} | {', '.join(f'{s:.0f}' for s in m['fit_seconds'])} "
            f"| {m['selected_epochs']} | {statistics.fmean(epochs):.1f} |")
    lines.append("")
    for name, test in report["paired_tests"].items():
        lines.append(f"- {name} vs {DEFAULT}: mean per-user NDCG@10 difference "
                     f"{test['mean_difference']:+.4f}, Wilcoxon signed-rank p = {test['p']:.2g}")
    lines += ["", "Train s/epoch: the mean training time of an epoch after the first "
              "(validation excluded); the machine was shared with other jobs during some "
              "fits, so compare the interleaved measurement below instead.", "",
              f"Training cost of the queries (one model, the same {DEFAULT} batches "
              "with and without queries, interleaved rounds; the trainer embeds the "
              "distinct queries once before fit, and for comparison the encoder runs "
              "once per distinct query string of a batch, as it did before):", "",
              "| examples | s/step (median) | s/step per round | epoch (s, estimated) |",
              "|---|---|---|---|"]
    for name, cost in report["epoch_cost"].items():
        lines.append(f"| {name} | {cost['median']:.3f} | "
                     f"{', '.join(f'{v:.3f}' for v in cost['seconds_per_step'])} | "
                     f"{cost['epoch_seconds']:.0f} |")
    lines += ["", "## Steering", ""]
    names = list(methods)
    lines += ["Mean over genres (share of the queried genre in the top-10):", "",
              "| method | no query | named | paraphrase | chinese | Jaccard no query | "
              "Jaccard named | own list kept (named) | intent NDCG@10 named / no query |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        s = methods[name]["steering"]
        lines.append(
            f"| {name} | {_mean_by_kind(s, 'share_without_query', 'named'):.3f} | "
            f"{_mean_by_kind(s, 'share', 'named'):.3f} | "
            f"{_mean_by_kind(s, 'share', 'paraphrase'):.3f} | "
            f"{_mean_by_kind(s, 'share', 'chinese'):.3f} "
            f"(no query {_mean_by_kind(s, 'share_without_query', 'chinese'):.3f}) | "
            f"{methods[name]['jaccard_between_users_without_query']:.3f} | "
            f"{_mean_by_kind(s, 'jaccard_between_users', 'named'):.3f} | "
            f"{_mean_by_kind(s, 'overlap_with_own_list', 'named'):.3f} | "
            f"{_mean_by_kind(s, 'intent_ndcg', 'named'):.4f} / "
            f"{_mean_by_kind(s, 'intent_ndcg_without_query', 'named'):.4f} |")
    lines += ["", "Per query (share of the genre in the top-10; catalogue share for scale):",
              "", "| genre | kind | query | catalogue | " + " | ".join(
                  f"{n}: no query → query" for n in names) + " |",
              "|---|---|---|---|" + "---|" * len(names)]
    first = methods[names[0]]["steering"]
    for key, q in first.items():
        cells = [f"{methods[n]['steering'][key]['share_without_query']:.3f} → "
                 f"**{methods[n]['steering'][key]['share']:.3f}**" for n in names]
        lines.append(f"| {q['genre']} | {q['kind']} | {q['text']} | "
                     f"{q['catalogue_share']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "How MiniLM's tokenizer reads the Chinese queries:", ""]
    for text in CHINESE.values():
        lines.append(f"- {text}: {' '.join(report['tokens'][text])}")
    lines += ["", "## End to end (exported `serving_default`, users 1 and 2, empty "
              "request history: the stored one; top 5)", ""]
    for name in names:
        lines.append(f"### {name}")
        lines.append("")
        for text, by_user in methods[name]["served"].items():
            for user, titles in by_user.items():
                lines.append(f"- `{text}` → user {user}: {'; '.join(titles)}")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.2],
                        help="query_fraction values compared with the default (0)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--work-dir", default=str(ROOT / "runs" / "text_intent"))
    parser.add_argument("--out-json", default=str(ROOT / "docs/benchmarks/text_intent.json"))
    parser.add_argument("--out-md", default=str(ROOT / "docs/benchmarks/text_signals_intent.md"))
    args = parser.parse_args()
    work = Path(args.work_dir)
    started = time.perf_counter()
    paths = convert_ml100k(work / "data")
    dataset = load_dataset(paths["interactions"], paths["items"], paths["users"])
    results = {}
    for fraction in [0.0] + [f for f in args.fractions if f != 0]:
        results[_method(fraction)] = [run(dataset, work, fraction, seed) for seed in args.seeds]
    report = summarise(results)
    report["epoch_cost"] = epoch_cost(dataset, work)
    command = " ".join([".venv/bin/python benchmarks/text_intent.py", *sys.argv[1:]])
    Path(args.out_json).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    out_md = Path(args.out_md)
    # The observations are written by hand from the tables: kept across reruns.
    kept = out_md.read_text().split(OBSERVATIONS, 1) if out_md.exists() else []
    out_md.write_text(markdown(report, command, time.perf_counter() - started)
                      + (OBSERVATIONS + kept[1] if len(kept) == 2 else ""))
    print(Path(args.out_md).read_text())


if __name__ == "__main__":
    main()
