"""Profile store benchmarks: ingest rate, fast-path refresh rate, publish time.

    .venv/bin/python benchmarks/profiles_update.py --model runs/benchmark/loo

At ml-100k size (the real log: 100k events, 943 users) and on a synthetic
log (benchmarks/synthetic_log.py; default 10M events over 1M users on the
ml-100k catalogue), measures in one run:
  1. ingest: events/s for updates of growing size into the same store;
  2. fast path: users/s of `refresh_profiles` for growing numbers of
     touched users (2 new events each), and for the whole population;
  3. publish: `export_model --store` wall time and SavedModel size.
Writes docs/benchmarks/profiles_update.md (+ JSON) after every stage, so a
partial run still leaves its figures.
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

from tf_profiles.data.loaders import load_items, load_users
from tf_profiles.data.movielens import convert_ml100k
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.profiles.refresh import refresh_profiles
from tf_profiles.export.versions import export_model
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import ProfileStore

from synthetic_log import synthetic_log

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "profiles_update"


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _ingest(store, frame, path):
    frame.to_parquet(path, index=False)
    started = time.perf_counter()
    report = ingest_file(store, path)
    seconds = time.perf_counter() - started
    if report.rejected:
        raise RuntimeError(f"{path}: {len(report.rejected)} rows rejected")
    return {"events": len(frame), "inserted": report.inserted, "seconds": round(seconds, 2),
            "events_per_s": round(len(frame) / seconds)}


def _refresh(store, builder):
    report = refresh_profiles(store, builder, progress=False)
    return {"users": report.written, "events_read": report.events,
            "seconds": round(report.seconds, 2),
            "users_per_s": round(report.written / report.seconds) if report.seconds else None}


def _touch(users, count, after, rng, items):
    """Two new events (one liked, one not) for ``count`` random users, after ``after``."""
    chosen = rng.choice(users, size=count, replace=False)
    return pd.DataFrame({
        "user_id": np.repeat(chosen, 2), "item_id": rng.choice(items, size=2 * count),
        "timestamp": after + np.tile([100, 200], count), "rating": np.tile([5.0, 1.0], count)})


def _publish(model, store, base):
    started = time.perf_counter()
    version = export_model(model, base, store=store, log=lambda _: None)
    seconds = time.perf_counter() - started
    size = _folder_bytes(version)
    shutil.rmtree(version)
    return {"seconds": round(seconds, 1), "saved_model_mb": round(size / 2**20, 1)}


def _scale(name, results, model, work, items_frame, users_frame, initial_chunks, touched,
           rng, save):
    """Ingest ``initial_chunks`` in order, refresh all, then update ``touched`` users."""
    stage = results[name]
    stage.update(ingest=[], refresh=[], updates=[])
    store_path = work / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    with ProfileStore(store_path) as store:
        store.upsert_items(items_frame)
        started = time.perf_counter()
        store.upsert_users(users_frame)
        stage["users_upsert_seconds"] = round(time.perf_counter() - started, 2)
        builder = ProfileBuilder.from_model_dir(model, store)
        for index, chunk in enumerate(initial_chunks):
            row = _ingest(store, chunk, work / f"{name}-chunk{index}.parquet")
            row["store_events_before"] = store.count_events() - row["inserted"]
            stage["ingest"].append(row)
            save()
        stage["refresh"].append({"what": "whole population", **_refresh(store, builder)})
        save()
        stage["publish"] = _publish(model, store, work / f"{name}-models")
        save()
        after = int(store.connection.execute("SELECT MAX(timestamp) FROM events").fetchone()[0])
        users = users_frame["user_id"].to_numpy(dtype=object)
        items = items_frame["item_id"].to_numpy(dtype=object)
        for count in touched:
            update = _touch(users, min(count, len(users)), after, rng, items)
            after += 1_000
            row = {"touched_users": int(update["user_id"].nunique()),
                   "ingest": _ingest(store, update, work / f"{name}-update{count}.parquet"),
                   "refresh": _refresh(store, builder)}
            stage["updates"].append(row)
            save()
        stage["publish_after_update"] = _publish(model, store, work / f"{name}-models")
        save()


def _markdown(results) -> str:
    lines = ["# Profile store: ingest, fast-path refresh, publish", "",
             f"Measured {results['date']} on {results['machine']} with "
             f"`.venv/bin/python benchmarks/profiles_update.py --model {results['model']}"
             f" --events {results['synthetic_events']} --users {results['synthetic_users']}`. "
             "One process, SQLite on the local disk; other work may have shared the 2 cores.",
             ""]
    for name in ("ml-100k", "synthetic"):
        stage = results.get(name)
        if not stage:
            continue
        lines += [f"## {name}: {stage['description']}", "",
                  "| ingest (events in the update) | store held before | seconds | events/s |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {r['events']:,} | {r['store_events_before']:,} | {r['seconds']} | "
                  f"{r['events_per_s']:,} |" for r in stage["ingest"]]
        lines += ["", "| fast-path refresh | users | events read | seconds | users/s |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['what']} | {r['users']:,} | {r['events_read']:,} | {r['seconds']} | "
                  f"{r['users_per_s']:,} |" for r in stage["refresh"]]
        lines += [f"| update touching {u['touched_users']:,} users | {u['refresh']['users']:,} "
                  f"| {u['refresh']['events_read']:,} | {u['refresh']['seconds']} | "
                  f"{u['refresh']['users_per_s']:,} |" for u in stage["updates"]]
        lines += ["", "| update (2 events per touched user) | ingest events/s | "
                  "ingest s | refresh s |", "|---:|---:|---:|---:|"]
        lines += [f"| {u['touched_users']:,} users | {u['ingest']['events_per_s']:,} | "
                  f"{u['ingest']['seconds']} | {u['refresh']['seconds']} |"
                  for u in stage["updates"]]
        for key, label in (("publish", "after the initial load"),
                           ("publish_after_update", "after the updates")):
            if key in stage:
                lines.append(f"\nPublish {label}: {stage[key]['seconds']} s, SavedModel "
                             f"{stage[key]['saved_model_mb']} MB.")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a model folder trained on ml-100k")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--work", default="runs/profiles_benchmark")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    results = {"date": time.strftime("%Y-%m-%d"), "model": args.model,
               "machine": f"{os.cpu_count()} cores",
               "synthetic_events": args.events, "synthetic_users": args.users}

    def save():
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.with_suffix(".json").write_text(json.dumps(results, indent=2))
        DOC.with_suffix(".md").write_text(_markdown(results))

    paths = convert_ml100k(work / "ml-100k")
    items = load_items(paths["items"])
    events = pd.read_csv(paths["interactions"], dtype={"user_id": str, "item_id": str})
    results["ml-100k"] = {"description": f"{len(events):,} events, "
                                         f"{events['user_id'].nunique():,} users"}
    _scale("ml-100k", results, args.model, work, items, load_users(paths["users"]), [events],
           (10, 100, 943), rng, save)
    if args.skip_synthetic:
        return
    started = time.perf_counter()
    users, synthetic = synthetic_log(items, events["item_id"].value_counts(), args.events,
                                     args.users)
    results["synthetic"] = {
        "description": f"{len(synthetic):,} events over {len(users):,} users (generated in "
                       f"{time.perf_counter() - started:.0f} s)"}
    bounds = [0] + [b for b in (10_000, 100_000, 1_000_000) if b < len(synthetic)] + [
        len(synthetic)]
    chunks = [synthetic.iloc[a:b] for a, b in zip(bounds, bounds[1:])]
    _scale("synthetic", results, args.model, work, items, users, chunks,
           (1_000, 10_000, 100_000), rng, save)


if __name__ == "__main__":
    main()
