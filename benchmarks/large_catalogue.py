"""A 1M-item catalogue: streamed embeddings, export, load and CPU latency.

    .venv/bin/python benchmarks/large_catalogue.py --model runs/benchmark/loo

Builds a catalogue of ml-100k's items plus synthetic items (distinct titles,
real genres) up to ``--items``, then measures in one process:
  1. text stage: items/s of `stream_text_embeddings` with the model's encoder
     (all-MiniLM-L6-v2) over the first ``--text-sample`` texts (ml-100k's
     included). The other rows of the [N, 384] file REUSE those measured
     vectors (row i takes sample row 1682 + (i - sample) mod (sample - 1682));
     pass ``--text-sample N`` to encode every text (about an hour on 2 cores);
  2. item-tower stage: items/s of `stream_item_embeddings` over all N items;
  3. export: `export_model(..., served_items=...)` with a BruteForce index
     over all N items: wall time and SavedModel size on disk;
  4. serving, in a fresh child process: `tf.saved_model.load` time and
     `serving_default` latency (p50/p99) at batch 1 and 32 on CPU, plus the
     index alone (matmul + top_k).
Writes docs/benchmarks/large_catalogue.md (+ JSON) after every stage.
"""
import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import tf_profiles  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (the SavedModel's tokenizer ops)

from tf_profiles.export.catalogue import (stream_item_embeddings, stream_rows,  # noqa: E402
                                           stream_text_embeddings)
from tf_profiles.export.versions import export_model  # noqa: E402
from tf_profiles.text.encoder import TextEncoder  # noqa: E402
from tf_profiles.text.render import render_item_text  # noqa: E402
from tf_profiles.bundle.model_dir import ModelDir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "large_catalogue"
GENRES = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"]
ADJECTIVES = ("Silent Broken Golden Hidden Last Burning Frozen Crimson Lonely Wild Dark Bright "
              "Electric Savage Gentle Endless Forgotten Secret Lost Final Hollow Iron Velvet "
              "Midnight Distant Fallen Rising Restless Sacred Stolen Quiet Bitter Sweet Shattered "
              "Eternal Little Great Strange Crooked Painted Wandering Northern Southern Empty "
              "Brave Blind Careless Desperate Glass Paper").split()
NOUNS = ("River Empire Garden Stranger Kingdom Highway Promise Shadow Harbor Mirror Summer "
         "Winter Letter Station Island Frontier Witness Orchard Machine Circus Lantern Prophet "
         "Bridge Thunder Canyon Voyage Detective Orchestra Horizon Fortress Tide Widow Outlaw "
         "Daughter Stranger's Return Carnival Lighthouse Monastery Comet Diary Citadel Hunter "
         "Valley Engine Ballad Signal Riddle Mountain Ocean").split()
PLACES = ("Paris Tokyo Cairo Lisbon Chicago Berlin Havana Bombay Oslo Dublin Prague Rome "
          "Vienna Madrid Nairobi Lima Quebec Sydney Boston Memphis Tangier Seville Kyoto "
          "Marseille Naples Bristol Denver Odessa Warsaw Calcutta Atlanta Geneva Tulsa Juneau "
          "Reno Galway Hanoi Manila Dakar Zagreb").split()


def _peak_rss_gb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child
    # would report its parent's peak. Counts resident pages of memory-mapped
    # files too (reclaimable page cache).
    status = Path("/proc/self/status").read_text()
    kilobytes = int(status.split("VmHWM:")[1].split()[0])
    return round(kilobytes / 2**20, 2)


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _fresh(*paths):
    # A measured stage starts from nothing: a resumed file would time nothing.
    for path in paths:
        for p in (path, path.with_name(path.name + ".progress.json")):
            p.unlink(missing_ok=True)


def synthetic_catalogue(items: pd.DataFrame, count: int, seed: int = 0):
    """ml-100k's items first, then distinct synthetic ones: (ids, texts)."""
    rng = np.random.default_rng(seed)
    extra = max(count - len(items), 0)
    sizes = (len(ADJECTIVES), len(NOUNS), len(PLACES), 100)
    codes = rng.choice(int(np.prod(sizes)), size=extra, replace=False)  # distinct titles
    adjective, noun, place, year = np.unravel_index(codes, sizes)
    genre_count = rng.integers(1, 4, size=extra)
    texts = [render_item_text({
        "title": f"The {ADJECTIVES[a]} {NOUNS[n]} of {PLACES[p]} ({1920 + y})",
        "tags": "|".join(rng.choice(GENRES, size=g, replace=False))})
        for a, n, p, y, g in zip(adjective, noun, place, year, genre_count)]
    ids = items["item_id"].astype(str).tolist() + [f"syn-{i}" for i in range(extra)]
    return ids[:count], (items["text"].tolist() + texts)[:count]


def _latencies(function, requests, warmup: int = 5):
    for request in requests[:warmup]:
        function(**request)
    seconds = []
    for request in requests:
        started = time.perf_counter()
        function(**request)
        seconds.append(time.perf_counter() - started)
    ms = np.asarray(seconds) * 1000
    return {"requests": len(requests), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "mean_ms": round(float(ms.mean()), 1)}


def measure_serving(version: Path, users, k: int, count: int) -> dict:
    """Load time, then ``serving_default`` and index-only latency at batch 1 and 32."""
    started = time.perf_counter()
    loaded = tf.saved_model.load(str(version))
    load_seconds = time.perf_counter() - started
    rss_after_load = _peak_rss_gb()
    rng = np.random.default_rng(0)
    serve = loaded.signatures["serving_default"]
    candidates = loaded.index._candidates  # the restored [N, D] BruteForce variable

    @tf.function(autograph=False)
    def index_only(q):
        # K + 30 (the history width): what serving_default asks of the index.
        return tf.math.top_k(tf.matmul(q, candidates, transpose_b=True), k=k + 30)

    out = {"load_seconds": round(load_seconds, 1), "rss_after_load_gb": rss_after_load,
           "latency": {}, "index_only": {}}
    for batch, requests in ((1, count), (32, max(count * 2 // 3, 10))):
        out["latency"][str(batch)] = _latencies(serve, [
            {"user_id": tf.constant(rng.choice(users, batch)),
             "history": tf.constant([[""]] * batch),
             "user_text": tf.constant([""] * batch)} for _ in range(requests)])
        out["index_only"][str(batch)] = _latencies(index_only, [
            {"q": tf.math.l2_normalize(tf.random.normal([batch, candidates.shape[1]]), -1)}
            for _ in range(requests)])
    out["peak_rss_gb"] = _peak_rss_gb()
    return out


def _summary(r) -> dict:
    return {"date": r["date"], "load_average_at_start": r.get("load_average_at_start"),
            "text_items_per_s": r["text_stage"]["items_per_s"],
            "item_items_per_s": r["item_stage"]["items_per_s"],
            "export_s": r["export"]["seconds"], "load_s": r["serving"]["load_seconds"],
            "b1_p50_ms": r["serving"]["latency"]["1"]["p50_ms"],
            "b32_p50_ms": r["serving"]["latency"]["32"]["p50_ms"]}


def _previous_runs(keep: int = 5) -> list:
    # The machine is shared, so one run's figures swing; earlier complete runs
    # of the same configuration stay beside the latest.
    path = DOC.with_suffix(".json")
    if not path.is_file():
        return []
    previous = json.loads(path.read_text())
    runs = previous.get("previous_runs", [])
    if "serving" in previous:
        runs = runs + [_summary(previous)]
    return runs[-keep:]


def _markdown(r) -> str:
    n, d = r["items"], r.get("embedding_dim", 64)
    lines = ["# A 1M-item catalogue: streamed embeddings, export, CPU serving", "",
             f"Measured {r['date']} on {r['machine']} with `.venv/bin/python "
             f"benchmarks/large_catalogue.py --model {r['model']} --items {n} "
             f"--text-sample {r['text_sample']}`. One process at a time (stage 4 in a "
             "child); other engineers' jobs (a long-running benchmark, test runs) shared the "
             "2 cores, so rates are lower "
             "bounds of an idle machine (load average at the start: "
             f"{r.get('load_average_at_start')}).", ""]
    text = r.get("text_stage")
    if text:
        lines += [
            "## 1. Text stage (frozen all-MiniLM-L6-v2, streamed to a .npy memmap)", "",
            f"- **Measured**: {text['measured_items']:,} texts (ml-100k's {text['ml100k']:,} "
            f"items + synthetic ones) in {text['seconds']} s = **{text['items_per_s']:,} "
            f"texts/s** (chunks of {text['chunk_size']:,}, batches of 64 sorted by length).",
            f"- The streamed vectors of the ml-100k items equal the training run's cached "
            f"ones within {text['max_abs_diff_vs_training_cache']:.1e}.",
            f"- **Not measured**: the other {n - text['measured_items']:,} rows of the "
            f"[{n:,}, 384] file reuse measured vectors ({text['fill_note']}); filling them "
            f"took {text['fill_seconds']} s. At the measured rate, encoding all {n:,} texts "
            f"would take about {n / text['items_per_s'] / 60:.0f} min (an extrapolation).",
            f"- File: {text['file_mb']:,} MB (float32). Peak RSS so far "
            f"{text['peak_rss_gb']} GB (counts resident pages of the memory-mapped files).",
            ""]
    items = r.get("item_stage")
    if items:
        lines += [
            "## 2. Item-tower stage (all items, measured)", "",
            f"- {n:,} items in {items['seconds']} s = **{items['items_per_s']:,} items/s** "
            f"(chunks of {items['chunk_size']:,}; includes hashing the inputs for the "
            f"resume key: {items['key_seconds']} s). File: {items['file_mb']:,} MB. "
            f"Peak RSS so far {items['peak_rss_gb']} GB.", ""]
    export = r.get("export")
    if export:
        lines += [
            "## 3. Export with a BruteForce index over all items", "",
            "| | |", "|---|---|",
            f"| export wall time | {export['seconds']} s |",
            f"| SavedModel on disk | {export['saved_model_mb']:,} MB |",
            f"| of which variables/ | {export['variables_mb']:,} MB |",
            f"| saved_model.pb | {export['pb_mb']:,} MB |",
            f"| peak RSS after export | {export['peak_rss_gb']} GB |", "",
            f"The index itself is [{n:,}, {d}] float32 = {n * d * 4 / 2**20:,.0f} MB; the "
            f"per-item text table the servable keeps for history items and "
            f"`item_embedding` is [{n:,}, 384] float32 = {n * 384 * 4 / 2**20:,.0f} MB, "
            "the larger part of the SavedModel. It could go: a history item's "
            "item-tower output is its index row (both are the unit-normalised item tower), "
            "so the servable could gather history embeddings from the index instead of "
            "re-running the item tower over stored text (a change to "
            "`TwoTowerModel.user_embedding` and the servable, not made here).", ""]
    serving = r.get("serving")
    if serving:
        lines += [
            "## 4. Load and `serving_default` latency on CPU", "",
            f"- In a fresh process: `tf.saved_model.load` **{serving['load_seconds']} s** "
            f"(files in the page cache; peak RSS after load {serving['rss_after_load_gb']} GB, "
            f"after the requests {serving['peak_rss_gb']} GB).",
            f"- Requests: known users, stored history (empty `history`), K = {r['k']}; "
            "latency of the signature call in-process (no gRPC).", "",
            "| batch | requests | p50 ms | p99 ms | mean ms | index alone p50 ms |",
            "|---:|---:|---:|---:|---:|---:|"]
        for batch, row in serving["latency"].items():
            lines.append(f"| {batch} | {row['requests']} | {row['p50_ms']} | {row['p99_ms']} | "
                         f"{row['mean_ms']} | {serving['index_only'][batch]['p50_ms']} |")
        lines += ["", "\"Index alone\" is `tf.linalg.matmul` of random unit queries with the "
                  "loaded [N, D] index plus `tf.math.top_k` (K + 30), i.e. the retrieval part "
                  "of `serving_default` without the towers.", ""]
    if r.get("previous_runs"):
        lines += ["## Other runs of this script (same machine, other load)", "",
                  "| date | load avg (1/5/15 min) | texts/s | items/s (tower) | export s | "
                  "load s | b1 p50 ms | b32 p50 ms |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {p['date']} | {p['load_average_at_start'] or 'not recorded'} | "
                  f"{p['text_items_per_s']:,} | "
                  f"{p['item_items_per_s']:,} | {p['export_s']} | {p['load_s']} | "
                  f"{p['b1_p50_ms']} | {p['b32_p50_ms']} |" for p in r["previous_runs"]]
        lines.append("")
    lines += _gpu_section(n, d)
    return "\n".join(lines)


def _sharding_figures() -> str:
    # Written by benchmarks/sharded_retrieval.py, which reuses this script's files.
    path = DOC.with_name("sharded_retrieval.json")
    if not path.is_file():
        return ""
    r = json.loads(path.read_text())
    latency = r["latency"]
    return (f" Measured {r['date']} with S = {r['shards']} through the local server "
            f"([sharded_retrieval.md](sharded_retrieval.md)): shards of "
            f"{', '.join(map(str, r['shards_export']['mb_each']))} MB and a "
            f"{r['main_export']['mb']:,} MB main servable instead of one of "
            f"{r['single']['saved_model_mb']:,} MB; p50 at batch 1 "
            f"{latency['1']['sharded']['p50_ms']} ms sharded vs "
            f"{latency['1']['single']['p50_ms']} ms single, at batch 32 "
            f"{latency['32']['sharded']['p50_ms']} vs {latency['32']['single']['p50_ms']} ms "
            "(all shards on the same 2 cores, so the fan-out adds work here rather than "
            "spreading it); same items, scores within "
            f"{max(v['max_score_diff'] for v in r['same_items'].values()):.0e}.")


def _gpu_section(n: int, d: int):
    flops32 = 2 * 32 * d * n
    index32, index16 = n * d * 4, n * d * 2
    scores = 32 * n * 4
    return [
        "## GPU expectation (on paper, not measured)", "",
        f"Per `serving_default` batch of B = 32 over N = {n:,} items, D = {d}:", "",
        f"- scores: a [32, {d}] × [{d}, {n:,}] matmul = 2·32·{d}·{n:,} = "
        f"**{flops32 / 1e9:.1f} GFLOP** (B = 1: {2 * d * n / 1e9:.2f} GFLOP);",
        f"- memory: reading the index once per batch, {index32 / 1e6:.0f} MB in float32 or "
        f"{index16 / 1e6:.0f} MB in float16, plus writing and re-reading the [32, {n:,}] "
        f"float32 scores for top_k, 2 × {scores / 1e6:.0f} MB. The arithmetic intensity "
        f"(~{flops32 / (index32 + 2 * scores):.0f} FLOP/byte at B = 32) is below either "
        "GPU's float32 ridge point (T4 ≈ 25, A100 ≈ 13 FLOP/byte), so the matmul is "
        "**memory-bound**.", "",
        "Assumed hardware (datasheet peaks; real kernels reach ~60–80 % of bandwidth):", "",
        "| GPU | float32 | float16 tensor cores | memory bandwidth |", "|---|---:|---:|---:|",
        "| T4 | 8.1 TFLOPS | 65 TFLOPS | 320 GB/s |",
        "| A100 40 GB | 19.5 TFLOPS (156 TF32) | 312 TFLOPS | 1,555 GB/s |", "",
        "| per batch of 32 | T4 float32 | T4 float16 | A100 float32 | A100 float16 |",
        "|---|---:|---:|---:|---:|",
        f"| matmul compute | {flops32 / 8.1e12 * 1e3:.2f} ms | {flops32 / 65e12 * 1e3:.3f} ms "
        f"| {flops32 / 19.5e12 * 1e3:.2f} ms | {flops32 / 312e12 * 1e3:.3f} ms |",
        f"| index read | {index32 / 320e9 * 1e3:.2f} ms | {index16 / 320e9 * 1e3:.2f} ms | "
        f"{index32 / 1555e9 * 1e3:.2f} ms | {index16 / 1555e9 * 1e3:.2f} ms |",
        f"| scores write + read | {2 * scores / 320e9 * 1e3:.2f} ms | "
        f"{2 * scores / 320e9 * 1e3:.2f} ms | {2 * scores / 1555e9 * 1e3:.2f} ms | "
        f"{2 * scores / 1555e9 * 1e3:.2f} ms |", "",
        "So scoring a batch of 32 against 1M items should take about 1–2 ms on a T4 and "
        "well under 0.5 ms on an A100 at peak bandwidth. The index is read once per batch, "
        "so B = 1 costs nearly as much as B = 32: batching (`--enable_batching`) is what "
        "makes it cheap per query. The index and the scores are float32 even in a "
        "`--float16` export (the towers' outputs are cast to float32); a float16 index "
        "would halve the index read, not the scores traffic.", "",
        f"**top_k dominates on a GPU.** `serving_default` asks the index for K + H items "
        f"(K = 100 plus the history width, so ≥ 100). In TensorFlow's GPU TopKV2 kernel "
        "(tensorflow/core/kernels/topk_op_gpu.h, as we read it) k ≥ 100 takes the "
        "`cub::DeviceSegmentedRadixSort` path: a full sort of all 32 × 1M (score, index) "
        f"pairs, with {3 * scores / 1e6:.0f} MB of temporary buffers. Assuming a radix sort "
        "of 32-bit pairs at roughly 1–2 G pairs/s on a T4 and 5–10 G pairs/s on an A100 "
        f"(assumptions, not measured), that is ~{32 * n / 2e9 * 1e3:.0f}–"
        f"{32 * n / 1e9 * 1e3:.0f} ms on a T4 and ~{32 * n / 10e9 * 1e3:.0f}–"
        f"{32 * n / 5e9 * 1e3:.0f} ms on an A100 per batch of 32, an order of magnitude above "
        "the matmul. "
        "Below k = 100 (and more than 1,000 columns) the kernel keeps per-thread heaps "
        "instead (one block per row, ~60 threads at k = 99 within 48 KB of shared memory), "
        "which avoids the sort but leaves most of the GPU idle at B = 32. Measure both on "
        "the target GPU before sizing; keeping K + H below 100 (H = max_history plus the "
        "request's history width: e.g. K = 50 with max_history = 30 and at most 19 request "
        "items) is the cheap lever. On top come the towers (MiniLM only "
        "when a request carries text; the user tower otherwise), which do not grow with N.",
        "",
        "## Options the stock TF Serving allows (no ScaNN: not linked into it)", "",
        "- **float16 index**: store the BruteForce candidates in float16 (not done today: "
        "`--float16` computes the towers in float16 but indexes float32 outputs); halves "
        "the index's memory and read traffic (128 MB at 1M × 64) at the price of reordering "
        "near-ties.",
        "- **Sharding the catalogue** (implemented: `tf_profiles.export.shards`, "
        "`tf_profiles.serving.sharded_client.ShardedClient`; serving/README.md): S "
        "index-only servables, each a BruteForce index over 1/S of the items (ids and "
        "vectors, no towers, no text table) with one `top_k` signature, one TF Serving "
        "model each; the main servable computes `user_embedding`, the client sends the "
        "query to all S concurrently, takes each shard's top K + H and merges by score "
        "(exact, since each shard returns its own exact top list), dropping the request's "
        "history. Memory and per-request work per shard drop by S. The user tower still "
        "reads each history item's text from the main servable's table, so the main "
        "servable is exported with the items histories need (e.g. the model's own items), "
        "not the whole catalogue (the history gather from the index of section 3 is still "
        "not made)." + _sharding_figures(),
        "- **Two-stage candidate filter**: keep a coarse index of cluster centroids (e.g. "
        "k-means over the item embeddings, C ≈ √N ≈ 1,000) and, per query, score only the "
        "items of the best few clusters, gathered with `tf.gather` in the graph. Approximate "
        "(recall depends on how many clusters are probed); pure TensorFlow ops, so it runs "
        "in the stock server.",
        "- **Smaller D** (a 32-wide tower halves the index) or pruning items nobody can be "
        "recommended (out of stock, too old) before indexing.", ""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a model folder trained on ml-100k")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--text-sample", type=int, default=20_000,
                        help="texts really encoded; the rest reuse their vectors")
    parser.add_argument("--work", default="runs/large_catalogue")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--measure-serving", metavar="VERSION_DIR",
                        help="(internal) only stage 4, on this SavedModel; prints JSON")
    args = parser.parse_args()
    model_dir = ModelDir(Path(args.model))
    if args.measure_serving:
        users = model_dir.catalogue().users["user_id"].astype(str).to_numpy()
        print(json.dumps(measure_serving(Path(args.measure_serving), users, args.k,
                                         args.requests)))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    config, known = model_dir.config(), model_dir.catalogue()
    sample = min(args.text_sample, args.items)
    if sample <= len(known.items) and sample < args.items:
        raise ValueError(f"--text-sample {sample} must exceed ml-100k's {len(known.items)} "
                         "items so that synthetic texts are measured too")
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{os.cpu_count()} CPU cores, no GPU", "model": args.model,
               "items": args.items, "text_sample": sample, "k": args.k,
               "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
               "previous_runs": _previous_runs()}

    def save():
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.with_suffix(".json").write_text(json.dumps(results, indent=2))
        DOC.with_suffix(".md").write_text(_markdown(results))

    started = time.perf_counter()
    ids, texts = synthetic_catalogue(known.items, args.items)
    results["catalogue_seconds"] = round(time.perf_counter() - started, 1)

    # === 1. Text stage ===
    encoder = TextEncoder.from_checkpoint(config.encoder, max_length=config.text_max_length)
    measured_path, text_path = work / "text_measured.npy", work / "text.npy"
    _fresh(measured_path, text_path)
    started = time.perf_counter()
    measured = stream_text_embeddings(texts[:sample], encoder, measured_path, chunk_size=4096)
    seconds = time.perf_counter() - started
    first = len(known.items)
    reused = sample - first

    def fill(start, stop):
        rows = np.arange(start, stop)
        source = np.where(rows < sample, rows, first + (rows - sample) % max(reused, 1))
        return measured[source]

    started = time.perf_counter()
    text = stream_rows(text_path, args.items, encoder.output_dim, fill,
                       key=f"{sample} measured of {args.items}", chunk_size=65536,
                       desc="filling")
    results["text_stage"] = {
        "measured_items": sample, "ml100k": first, "seconds": round(seconds, 1),
        "items_per_s": round(sample / seconds), "chunk_size": 4096,
        "max_abs_diff_vs_training_cache": float(np.abs(
            measured[:first] - known.item_text_embeddings).max()),
        "fill_note": f"row i ≥ {sample:,} copies measured row {first:,} + (i − {sample:,}) "
                     f"mod {reused:,}, i.e. synthetic texts' vectors; ids stay distinct",
        "fill_seconds": round(time.perf_counter() - started, 1),
        "file_mb": round(text_path.stat().st_size / 2**20), "peak_rss_gb": _peak_rss_gb()}
    save()
    del encoder
    gc.collect()

    # === 2. Item-tower stage ===
    model = model_dir.load_model()
    items_path = work / "items.npy"
    _fresh(items_path)
    started = time.perf_counter()
    items = stream_item_embeddings(model, ids, text, items_path, chunk_size=65536)
    seconds = time.perf_counter() - started
    key_started = time.perf_counter()
    stream_item_embeddings(model, ids, text, items_path, chunk_size=65536)  # finished: no work
    results["embedding_dim"] = int(items.shape[1])
    results["item_stage"] = {
        "seconds": round(seconds, 1), "items_per_s": round(args.items / seconds),
        "chunk_size": 65536, "key_seconds": round(time.perf_counter() - key_started, 1),
        "file_mb": round(items_path.stat().st_size / 2**20), "peak_rss_gb": _peak_rss_gb()}
    save()
    del model
    gc.collect()

    # === 3. Export ===
    base = work / "saved_models" / "large"
    shutil.rmtree(base, ignore_errors=True)
    started = time.perf_counter()
    version = export_model(model_dir.path, base, k=args.k, log=lambda _: None,
                           served_items=(ids, text, items))
    results["export"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "saved_model_mb": round(_folder_bytes(version) / 2**20),
        "variables_mb": round(_folder_bytes(version / "variables") / 2**20),
        "pb_mb": round((version / "saved_model.pb").stat().st_size / 2**20, 1),
        "peak_rss_gb": _peak_rss_gb()}
    save()
    del text, items
    gc.collect()

    # === 4. Load and latency, in a fresh process: its memory is the servable's ===
    child = subprocess.run(
        [sys.executable, __file__, "--model", args.model, "--k", str(args.k),
         "--requests", str(args.requests), "--measure-serving", str(version)],
        stdout=subprocess.PIPE, text=True, check=True)
    results["serving"] = json.loads(child.stdout.splitlines()[-1])
    save()
    print(DOC.with_suffix(".md").read_text())

if __name__ == "__main__":
    main()
