"""SavedModel size against the served state: saved_model.pb must not grow with it.

A SavedModel proto over 2 GB cannot be written or loaded, so every per-user
and per-event value must live in variables/, not in the graph. This builds
servables of the real ml-100k model over synthetic served states of growing
size — up to the 10M-event / 1M-user scale of benchmarks/profiles_update.py —
and records saved_model.pb and variables/ sizes and the save time:

    .venv/bin/python benchmarks/export_size.py --model runs/benchmark/loo

The served state is generated directly (random profiles, histories and
consumed items over the ml-100k catalogue), not refreshed through a profile
store: the sizes depend on the counts, not on the values, and a store refresh
of 1M users alone takes minutes (see profiles_update.md).
"""
import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

import tf_profiles  # noqa: F401
import tensorflow as tf

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.export.module import ServingModule

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "export_size"


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _servable(model, users: int, events: int, rng):
    preprocessor = model.preprocessor
    items = preprocessor.item_text.ids
    ids = np.array([f"user-{i}" for i in range(users)], dtype=object)
    width = preprocessor.max_history
    served = preprocessor.with_state(
        items, preprocessor.item_text.vectors.numpy()[1:], ids,
        rng.normal(size=(users, preprocessor.text_dim)).astype(np.float32),
        rng.choice(items, (users, width)).astype(object),
        rng.integers(1, 6, (users, width)).astype(np.float32))
    dim = model.user_tower.embedding_dim
    profiles = {"embedding": rng.normal(size=(users, dim)).astype(np.float32),
                "profile_text": np.full(users, "age 24, male, technician. Interested in "
                                        "Drama (0.33), Comedy (0.19).", dtype=object),
                "interests": np.full((users, 5), "Drama", dtype=object),
                "interest_weights": np.full((users, 5), 0.2, np.float32)}
    consumed = pd.DataFrame({"user_id": ids[rng.integers(0, users, events)],
                             "item_id": rng.choice(items, events)})
    return ServingModule(model.with_preprocessor(served), profiles, k=100, consumed=consumed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "benchmark" / "loo"))
    parser.add_argument("--scales", nargs="+", default=["1000:10000", "100000:1000000",
                                                        "1000000:10000000"],
                        help="users:events pairs")
    parser.add_argument("--work", default=str(ROOT / "runs" / "export_size"))
    args = parser.parse_args()
    model = ModelDir(Path(args.model)).load_model()
    rng = np.random.default_rng(0)
    rows = []
    for scale in args.scales:
        users, events = (int(v) for v in scale.split(":"))
        started = time.perf_counter()
        module = _servable(model, users, events, rng)
        built = time.perf_counter() - started
        target = Path(args.work) / f"{users}"
        shutil.rmtree(target, ignore_errors=True)
        started = time.perf_counter()
        tf.saved_model.save(module, str(target), signatures=module.signatures())
        rows.append({"users": users, "events": events,
                     "consumed_pairs": int(module.consumed_rows.shape[0]),
                     "build_seconds": round(built, 1),
                     "save_seconds": round(time.perf_counter() - started, 1),
                     "saved_model_pb_bytes": (target / "saved_model.pb").stat().st_size,
                     "variables_mb": round(_bytes(target / "variables") / 2**20, 1)})
        print(rows[-1], flush=True)
        shutil.rmtree(target)
        del module
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    lines = [f"# Export size against the served state ({time.strftime('%Y-%m-%d')})", "",
             f"Machine: {os.cpu_count()} cores, no GPU. Command: "
             "`.venv/bin/python benchmarks/export_size.py --model runs/benchmark/loo` "
             "(the ml-100k model of benchmarks/quality_ml100k.py: 1,682 items, MiniLM "
             "encoder, max_history 30). Served states are synthetic (random profiles, "
             "latest histories and consumed items); sizes depend on the counts only.", "",
             "| users | events | distinct consumed pairs | saved_model.pb | variables/ | "
             "build s | save s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['users']:,} | {r['events']:,} | {r['consumed_pairs']:,} | "
              f"{r['saved_model_pb_bytes'] / 2**20:.2f} MB | {r['variables_mb']:,} MB | "
              f"{r['build_seconds']} | {r['save_seconds']} |" for r in rows]
    lines += ["", "saved_model.pb holds the graph only (the encoder's WordPiece vocabulary "
              "included); every per-user and per-event value (text embeddings, latest "
              "histories and ratings, consumed items, profiles, the id tables) is in "
              "variables/, which has no 2 GB limit."]
    DOC.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
