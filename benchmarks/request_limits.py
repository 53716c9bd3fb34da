"""What the largest request the local server takes by default costs (docs/reliability.md).

    .venv/bin/python benchmarks/request_limits.py --export-base saved_models/ml-100k

Serves the newest version under ``--export-base`` in this process with the
default ``RequestLimits`` and sends ``item_embedding`` requests of 1, 64 and
the most texts a request may hold, each text distinct and 4,000 characters
long (the encoder reads its first ``text_max_length`` tokens). Reports each
request's seconds and the process's peak RSS after it, then one text over
the limit, which must be refused before any work. Writes
docs/benchmarks/request_limits.md (+ JSON).
"""
import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

import tf_profiles  # noqa: F401  (Keras 2 before TensorFlow)
import grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tf_profiles.devserver.grpc_server import RequestLimits, start_server
from tf_profiles.devserver.registry import ModelRegistry, ServedModel
from tf_profiles.features.spec import ITEM_EMBEDDING, ITEM_ID, ITEM_TEXT
from tf_profiles.serving.tensors import GRPC_OPTIONS, predict_request

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("a long slow drama about a family and the farm it cannot keep " * 80)[:4000]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _request(count: int):
    texts = np.array([f"{i} {TEXT}"[:4000].encode() for i in range(count)], dtype=object)
    ids = np.array([f"new-{i}".encode() for i in range(count)], dtype=object)
    return predict_request("model", ITEM_EMBEDDING, {ITEM_ID: ids, ITEM_TEXT: texts})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-base", default=str(ROOT / "saved_models" / "ml-100k"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "request_limits"))
    args = parser.parse_args()
    limits = RequestLimits()
    registry = ModelRegistry([ServedModel("model", Path(args.export_base))])
    server, port = start_server(registry, port=0, poll_seconds=None, limits=limits)
    loaded = _rss_mib()
    rows = []
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for count in (1, 64, limits.max_texts):
            started = time.perf_counter()
            stub.Predict(_request(count), timeout=600)
            rows.append({"texts": count, "seconds": round(time.perf_counter() - started, 2),
                         "rss_mib": round(_rss_mib()), "peak_rss_mib": round(_peak_mib())})
        started = time.perf_counter()
        try:
            stub.Predict(_request(limits.max_texts + 1), timeout=600)
            refused = "answered (the limit did not hold)"
        except grpc.RpcError as error:
            refused = f"{error.code().name} in {time.perf_counter() - started:.2f} s"
    server.stop(grace=None)
    report = {"export_base": args.export_base, "version": max(registry.models["model"].versions),
              "limits": vars(limits), "rss_after_load_mib": round(loaded), "requests": rows,
              "one_text_over": refused}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    lines = ["# The largest request the local server takes, and what it costs", "",
             f"Command: `.venv/bin/python benchmarks/request_limits.py --export-base "
             f"{args.export_base}` (version {report['version']}, served in this process with "
             f"the default limits {report['limits']}). Each request is `item_embedding` of "
             "distinct 4,000-character texts. Machine: 2 cores, no GPU, shared with other "
             "work (seconds are indicative, memory is not affected).", "",
             f"RSS after the version loaded: {report['rss_after_load_mib']:,} MiB.", "",
             "| texts | seconds | RSS after, MiB | peak RSS so far, MiB |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['texts']} | {r['seconds']} | {r['rss_mib']:,} | {r['peak_rss_mib']:,} |"
              for r in rows]
    lines += ["", f"{limits.max_texts + 1} texts: {refused}."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
