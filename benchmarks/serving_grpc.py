"""Serving benchmarks: gRPC and REST lookups and recommendations, in-graph text cost.

    .venv/bin/python benchmarks/serving_grpc.py --model runs/benchmark/loo

Exports the model, starts the local PredictionService (`tf-profiles serve`)
and a minimal lookup-only servicer as separate processes, and measures,
side by side in one run (medians over rounds, 2 client threads):
  1. lookups/s through lookup_profiles at 1, 32, 256, 1024 ids per request,
     for both servers;
  2. serving_default latency p50/p99 at batch 1 and 32;
  3. TF Serving's REST API beside gRPC on the same server process: rows/s
     and per-request latency under the same 2 client threads, for
     lookup_profiles and serving_default at batch 1, 32, 256;
  4. raw text → embedding throughput of the SavedModel (item_embedding on
     new items' text) vs. the encoder's forward pass on pre-tokenized input.
Writes docs/benchmarks/serving_grpc.md (+ JSON).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import tf_profiles  # noqa: F401
import tensorflow as tf
import tensorflow_text  # noqa: F401

from tf_profiles.features.spec import (HISTORY, ITEM_EMBEDDING, LOOKUP_PROFILES,
                                       SERVING_DEFAULT, USER_ID, USER_TEXT)
from tf_profiles.serving.client import ServingClient
from tf_profiles.export.versions import export_model
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.bundle.model_dir import ModelDir

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (1, 32, 256, 1024)
REST_BATCHES = (1, 32, 256)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command, port, name):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.time() + 300
    client = ServingClient(f"127.0.0.1:{port}", name, max_retries=0, timeout=5)
    while time.time() < deadline:
        try:
            client.predict(LOOKUP_PROFILES, {USER_ID: np.array([b"1"])})
            return process
        except Exception:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"{command} did not come up")


def throughput(client, signature, requests, seconds, threads=2):
    """(rows/s, p50 ms, p99 ms) of ``threads`` clients cycling through ``requests``."""
    client.predict(signature, requests[0])  # untimed: the REST stub asks for the signature once
    stop = time.perf_counter() + seconds

    def worker(offset):
        times, index = [], offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            client.predict(signature, requests[index % len(requests)])
            times.append(time.perf_counter() - started)
            index += 1
        return times

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        times = [t for worker_times in pool.map(worker, range(threads)) for t in worker_times]
    rows = len(times) * len(next(iter(requests[0].values())))
    return (rows / (time.perf_counter() - started), float(np.percentile(times, 50)) * 1e3,
            float(np.percentile(times, 99)) * 1e3)


def lookup_requests(user_ids, batch):
    rng = np.random.default_rng(batch)
    return [{USER_ID: np.array(rng.choice(user_ids, batch))} for _ in range(64)]


def recommend_requests(user_ids, histories, batch, count=64):
    rng = np.random.default_rng(batch)
    requests = []
    for _ in range(count):
        rows = rng.integers(len(user_ids), size=batch)
        requests.append({USER_ID: user_ids[rows], HISTORY: histories[rows],
                         USER_TEXT: np.array([b""] * batch)})
    return requests


def lookups_per_second(client, user_ids, batch, seconds):
    return throughput(client, LOOKUP_PROFILES, lookup_requests(user_ids, batch), seconds)[0]


def rest_beside_grpc(clients, user_ids, histories, seconds, rounds):
    """{signature: {batch: {protocol: {rows_per_second, p50_ms, p99_ms}}}}, rounds alternating."""
    results = {}
    for signature in (LOOKUP_PROFILES, SERVING_DEFAULT):
        results[signature] = {}
        for batch in REST_BATCHES:
            requests = (lookup_requests(user_ids, batch) if signature == LOOKUP_PROFILES
                        else recommend_requests(user_ids, histories, batch))
            measured = {protocol: [] for protocol in clients}
            for _ in range(rounds):
                for protocol, client in clients.items():
                    measured[protocol].append(throughput(client, signature, requests, seconds))
            results[signature][batch] = {
                protocol: dict(zip(("rows_per_second", "p50_ms", "p99_ms"),
                                   np.median(np.array(values), axis=0).tolist()))
                for protocol, values in measured.items()}
            print(signature, batch, results[signature][batch], flush=True)
    return results


def latency(client, user_ids, histories, batch, requests=200):
    times = []
    for inputs in recommend_requests(user_ids, histories, batch, requests):
        started = time.perf_counter()
        client.predict(SERVING_DEFAULT, inputs)
        times.append(time.perf_counter() - started)
    return np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3


def stored_histories(version_dir, user_ids):
    """The servable's stored histories as item ids ([U, H] bytes, b"" = padding), per user id."""
    preprocessor = tf.saved_model.load(str(version_dir)).model.preprocessor

    def ids_and_rows(text_table):  # its id → catalogue row table
        ids, rows = tf.raw_ops.LookupTableExportV2(
            table_handle=text_table.table.resource_handle, Tkeys=tf.string, Tvalues=tf.int64)
        return ids.numpy(), rows.numpy()

    item_ids, item_rows = ids_and_rows(preprocessor.item_text)
    item_of_row = np.full(item_rows.max() + 1, b"", dtype=object)
    item_of_row[item_rows] = item_ids
    user_keys, user_rows = ids_and_rows(preprocessor.user_text)
    row_of_user = dict(zip(user_keys.tolist(), user_rows.tolist()))
    stored = preprocessor.stored_history.numpy()  # [users + 1, H] item rows, 0 = padding
    return item_of_row[stored[[row_of_user[u] for u in user_ids]]]


def text_throughput(version_dir, config, texts, batch=64, rounds=5):
    loaded = tf.saved_model.load(str(version_dir))
    serve = loaded.signatures[ITEM_EMBEDDING]
    encoder = TextEncoder.from_checkpoint(config.encoder, max_length=config.text_max_length)
    batches = [texts[i:i + batch] for i in range(0, len(texts) - batch + 1, batch)]
    tokenized = [encoder.tokenizer(tf.constant(b)) for b in batches]
    bare = tf.function(lambda t: encoder.bert(
        input_ids=t["input_ids"], attention_mask=t["attention_mask"],
        token_type_ids=t["token_type_ids"]).last_hidden_state)
    ids = [tf.constant([f"new-{i}" for i in range(len(b))]) for b in batches]
    for tokens, texts_batch, id_batch in zip(tokenized[:2], batches[:2], ids[:2]):  # warm up
        bare(tokens), serve(item_id=id_batch, item_text=tf.constant(texts_batch))
    exported, forward = [], []
    for _ in range(rounds):  # alternating, so drift hits both alike
        started = time.perf_counter()
        for tokens in tokenized:
            bare(tokens)
        forward.append(len(batches) * batch / (time.perf_counter() - started))
        started = time.perf_counter()
        for texts_batch, id_batch in zip(batches, ids):
            serve(item_id=id_batch, item_text=tf.constant(texts_batch))
        exported.append(len(batches) * batch / (time.perf_counter() - started))
    return float(np.median(exported)), float(np.median(forward))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "runs" / "benchmark" / "loo"))
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "serving_grpc"))
    args = parser.parse_args()
    model_dir = ModelDir(Path(args.model))
    work = Path(tempfile.mkdtemp(prefix="tf_profiles_bench_"))
    version = export_model(model_dir.path, work / "bench", k=100)
    catalogue = model_dir.catalogue()
    user_ids = catalogue.users["user_id"].to_numpy(dtype=object).astype(bytes)

    ours_port, minimal_port, rest_port = _free_port(), _free_port(), _free_port()
    bin_dir = Path(sys.executable).parent
    servers = [
        _start([str(bin_dir / "tf-profiles"), "serve", "--model-name", "bench",
                "--model-base-path", str(work / "bench"), "--port", str(ours_port),
                "--rest-api-port", str(rest_port)], ours_port, "bench"),
        _start([sys.executable, str(ROOT / "benchmarks" / "minimal_lookup_server.py"),
                str(version), str(minimal_port)], minimal_port, "bench"),
    ]
    results = {"lookups_per_second": {}, "latency_ms": {}}
    try:
        ours = ServingClient(f"127.0.0.1:{ours_port}", "bench", timeout=30)
        minimal = ServingClient(f"127.0.0.1:{minimal_port}", "bench", timeout=30)
        for batch in BATCHES:
            rounds = {"tf_profiles server": [], "minimal servicer": []}
            for _ in range(args.rounds):
                rounds["tf_profiles server"].append(
                    lookups_per_second(ours, user_ids, batch, args.seconds))
                rounds["minimal servicer"].append(
                    lookups_per_second(minimal, user_ids, batch, args.seconds))
            results["lookups_per_second"][batch] = {k: float(np.median(v))
                                                    for k, v in rounds.items()}
            print(batch, results["lookups_per_second"][batch], flush=True)
        histories = stored_histories(version, user_ids)
        for batch in (1, 32):
            p50, p99 = latency(ours, user_ids, histories, batch)
            results["latency_ms"][batch] = {"p50": p50, "p99": p99}
            print("latency", batch, p50, p99, flush=True)
        rest = ServingClient(f"127.0.0.1:{rest_port}", "bench", timeout=30, protocol="rest")
        results["rest_vs_grpc"] = rest_beside_grpc({"grpc": ours, "rest": rest}, user_ids,
                                                   histories, args.seconds, args.rounds)
    finally:
        for process in servers:
            process.kill()
    texts = catalogue.items["text"].tolist()
    exported, forward = text_throughput(version, model_dir.config(), texts)
    results["text_per_second"] = {"exported": exported, "encoder_forward": forward,
                                  "ratio": exported / forward}
    write_report(results, Path(args.out), args)


def write_report(results, out: Path, args):
    lookups = results["lookups_per_second"]
    one = lookups[1]["tf_profiles server"]
    lines = [f"# Serving benchmarks ({time.strftime('%Y-%m-%d')})", "",
             f"Machine: {os.cpu_count()} cores, no GPU; client and servers on 127.0.0.1, "
             f"2 client threads, medians of {args.rounds} rounds of {args.seconds} s, "
             "both servers measured alternately in the same run. Command: "
             "`.venv/bin/python benchmarks/serving_grpc.py --model runs/benchmark/loo` "
             "(the model from benchmarks/quality_ml100k.py; ml-100k, 943 users).", "",
             "## Batched profile lookups (lookup_profiles over gRPC)", "",
             "| ids per request | tf_profiles server lookups/s | × 1-id rate | minimal servicer "
             "lookups/s | ours / minimal |", "|---|---|---|---|---|"]
    for batch, row in lookups.items():
        ours, minimal = row["tf_profiles server"], row["minimal servicer"]
        lines.append(f"| {batch} | {ours:,.0f} | {ours / one:.0f}× | {minimal:,.0f} | "
                     f"{ours / minimal:.2f} |")
    ratio_256 = lookups[256]["tf_profiles server"] / one

    def verdict(met):
        return f"**{'met' if met else 'NOT met'}**"

    versus_minimal = {b: lookups[b]["tf_profiles server"] / lookups[b]["minimal servicer"]
                      for b in (256, 1024)}
    lines += ["", f"Targets: 256 ids ≥ 100× the 1-id rate: {ratio_256:.0f}× "
              f"({verdict(ratio_256 >= 100)}); ≥ 0.8 of the minimal servicer at 256 and "
              "1024 ids: " + ", ".join(f"{b}: {r:.2f} ({verdict(r >= 0.8)})"
                                      for b, r in versus_minimal.items()), "",
              "## serving_default latency (top-100 over 1,682 items)", "",
              "| batch | p50 ms | p99 ms |", "|---|---|---|"]
    for batch, row in results["latency_ms"].items():
        lines.append(f"| {batch} | {row['p50']:.2f} | {row['p99']:.2f} |")
    lines += ["", "## REST API beside gRPC (same `tf-profiles serve` process)", "",
              "Rows/s and per-request latency under the same 2 client threads, gRPC and REST "
              "measured alternately. The REST client is `ServingClient(protocol=\"rest\")`: "
              "columnar JSON (`inputs` → `outputs`) over urllib, one connection per request; "
              "the server parses and writes the JSON in Python (`tf_profiles/serving/rest.py`, "
              "`json_tensor.py`).", "",
              "| signature | batch | gRPC rows/s | REST rows/s | REST / gRPC | gRPC p50 ms | "
              "REST p50 ms | gRPC p99 ms | REST p99 ms |", "|---|---|---|---|---|---|---|---|---|"]
    for signature, batches in results["rest_vs_grpc"].items():
        for batch, row in batches.items():
            grpc_row, rest_row = row["grpc"], row["rest"]
            lines.append(
                f"| {signature} | {batch} | {grpc_row['rows_per_second']:,.0f} | "
                f"{rest_row['rows_per_second']:,.0f} | "
                f"{rest_row['rows_per_second'] / grpc_row['rows_per_second']:.2f} | "
                f"{grpc_row['p50_ms']:.2f} | {rest_row['p50_ms']:.2f} | "
                f"{grpc_row['p99_ms']:.2f} | {rest_row['p99_ms']:.2f} |")
    text = results["text_per_second"]
    lines += ["", "## Raw text → embedding (in-graph tokenization cost)", "",
              f"Exported `item_embedding` on new items' raw text: {text['exported']:,.0f} texts/s; "
              f"encoder forward pass alone on pre-tokenized input: "
              f"{text['encoder_forward']:,.0f} texts/s; ratio {text['ratio']:.2f} "
              f"(target ≥ 0.9: {verdict(text['ratio'] >= 0.9)}). "
              "Batches of 64 ml-100k item texts, median of 5 alternating rounds.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
