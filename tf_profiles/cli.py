"""The ``tf-profiles`` console entry point.

Subcommand names and flags are a contract: other tools call them.
"""
import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path


def _data(args):
    from tf_profiles.data.movielens import convert_ml100k

    paths = convert_ml100k(Path(args.out), Path(args.source) if args.source else None)
    for name, path in paths.items():
        print(f"{name}: {path}")


def _train(args):
    from tf_profiles.data.loaders import load_dataset
    from tf_profiles.training.config import TrainConfig
    from tf_profiles.training.distribute import make_strategy
    from tf_profiles.training.trainer import train

    strategy = make_strategy(args.strategy)  # first: multi-worker sets up TF's collectives
    overrides = dict(epochs=args.epochs, encoder=args.encoder, seed=args.seed,
                     protocol=args.protocol, encoder_mode=args.encoder_mode)
    config = (TrainConfig.from_file(args.config, **overrides) if args.config else
              TrainConfig(**{k: v for k, v in overrides.items() if v is not None}))
    dataset = load_dataset(args.interactions, args.items, args.users,
                           skip_bad_rows=args.skip_bad_rows)
    if dataset.skipped:
        print(f"skipped rows: {json.dumps(dataset.skipped)}")
    metrics = train(dataset, config, args.output, cache_dir=args.cache_dir, strategy=strategy)
    print(f"trained in {metrics['train_seconds']} s; model folder: {args.output}")


def _evaluate(args):
    from tf_profiles.evaluation.evaluate import evaluate, markdown_table

    evaluate(args.model, with_baselines=not args.no_baselines, output_dir=args.output)
    report = json.loads(((Path(args.output) if args.output else Path(args.model))
                         / "evaluation.json").read_text())
    print(markdown_table(report))


def _export(args):
    from tf_profiles.serving.export import export_model

    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) if args.store else contextlib.nullcontext() as store:
        export_model(args.model, args.export_base, version=args.version, k=args.k,
                     float16=args.float16, max_batch_size=args.max_batch_size, store=store)


def _export_shards(args):
    from tf_profiles.profiles.builder import ProfileBuilder
    from tf_profiles.serving.shards import export_shards
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) if args.store else contextlib.nullcontext() as store:
        builder = ProfileBuilder.from_model_dir(args.model, store, cache_dir=args.cache_dir)
    export_shards(builder.items["item_id"].tolist(), builder.item_embeddings(),
                  args.export_base, args.name, args.shards, k=args.k, version=args.version,
                  main_model=args.main_model, models_root=args.models_root)


def _serve(args):
    from tf_profiles.serving.server import ModelRegistry, ServedModel, serve_forever

    if args.model_config_file:
        registry = ModelRegistry.from_config_file(args.model_config_file)
    elif args.model_name and args.model_base_path:
        registry = ModelRegistry([ServedModel(args.model_name, Path(args.model_base_path))])
    else:
        raise ValueError("give --model-name and --model-base-path, or --model-config-file")
    serve_forever(registry, args.port, args.host, args.file_system_poll_wait_seconds)


def _query(args):
    import pandas as pd

    from tf_profiles.serving.client import ServingClient

    with ServingClient(args.server, args.model_name, version=args.version,
                       version_label=args.version_label, timeout=args.timeout,
                       max_batch_size=args.max_batch_size) as client:
        if args.what == "lookup":
            frame = client.lookup_profiles(args.ids)
            frame["embedding"] = frame["embedding"].map(lambda v: f"[{len(v)} floats]")
        elif args.what == "recommend":
            histories = [args.history] * len(args.ids) if args.history else None
            texts = [args.text] * len(args.ids) if args.text else None
            frame = client.recommend(args.ids, histories, texts)
            frame = frame[frame["rank"] <= args.top]
        elif args.what == "status":
            frame = pd.DataFrame(client.status())
        else:
            print(json.dumps(client.metadata(), indent=2))
            return
    with pd.option_context("display.max_colwidth", 200, "display.width", 200):
        print(frame.to_string(index=False))


def _ingest(args):
    from tf_profiles.data.loaders import load_items, load_users
    from tf_profiles.store.ingest import ingest_file
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) as store:
        if args.items:
            store.upsert_items(load_items(args.items))
        if args.users:
            store.upsert_users(load_users(args.users))
        report = ingest_file(store, args.file, batch_size=args.batch_size)
    print(f"{args.file}: {report.summary()}")
    for line, column, reason in report.rejected[:args.show_rejected]:
        print(f"  line {line}, column {column!r}: {reason}")
    if len(report.rejected) > args.show_rejected:
        print(f"  ... {len(report.rejected) - args.show_rejected} more")


def _delete_user(args):
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) as store:
        removed = store.delete_user(args.user_id)
    print(f"deleted user {args.user_id!r}: {removed} events, attributes and profile")


def _builder(args, store):
    from tf_profiles.profiles.builder import ProfileBuilder

    return ProfileBuilder.from_model_dir(args.model, store, half_life_days=args.half_life_days,
                                         cache_dir=args.cache_dir)


def _refresh(args):
    from tf_profiles.profiles.refresh import refresh_profiles
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) as store:
        if args.all:
            store.mark_stale()
        print(refresh_profiles(store, _builder(args, store), args.batch_size).summary())


def _update(args):
    from tf_profiles.profiles.refresh import refresh_profiles
    from tf_profiles.serving.export import export_model
    from tf_profiles.store.store import ProfileStore
    from tf_profiles.training.finetune import finetune

    _ingest(args)
    model, refused = args.model, False
    with ProfileStore(args.store) as store:
        print(refresh_profiles(store, _builder(args, store), args.refresh_batch_size).summary())
        if args.finetune_output:
            report = finetune(args.model, store.events(), args.finetune_output,
                              epochs=args.epochs, learning_rate=args.learning_rate,
                              max_ndcg_drop=args.max_ndcg_drop)
            refused = not report.accepted
            model = args.model if refused else args.finetune_output
        if args.export_base:
            export_model(model, args.export_base, k=args.k, store=store,
                         half_life_days=args.half_life_days, cache_dir=args.cache_dir)
    if refused:
        print(f"the fine-tuned model in {args.finetune_output} was not published; "
              f"the served profiles are refreshed with {args.model}", file=sys.stderr)
        return 3
    return 0


def _profile_show(args):
    from tf_profiles.profiles.plots import plot_interest_timeline
    from tf_profiles.profiles.timeline import interest_timeline
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) as store:
        store.check_user(args.user_id)
        events = store.events([args.user_id])
        profile = store.profiles([args.user_id])
        attributes = store.user_attributes([args.user_id])[0]
        stale = store.is_stale(args.user_id)
        timeline = interest_timeline(events, store.items(), args.half_life_days)
    print(f"user {args.user_id}: {len(events)} events")
    if attributes:
        print("attributes: " + ", ".join(f"{k}={v}" for k, v in attributes.items()))
    if profile.empty:
        print("no stored profile yet (run `tf-profiles refresh`)")
    else:
        row = profile.iloc[0]
        updated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(row["updated_at"]))
        print(f"profile (updated {updated}, model {row['model_key']}"
              f"{', STALE: newer events or attributes not refreshed yet' if stale else ''}):")
        print(f"  {row['description']}")
        print("  interests: " + (", ".join(f"{t} {w:.2f}" for t, w in row["interests"])
                                 or "none yet"))
        print(f"  embedding: {len(row['embedding'])} floats, norm "
              f"{float((row['embedding'] ** 2).sum() ** 0.5):.3f}")
    png = Path(args.png or f"profile_{args.user_id}.png")
    plot_interest_timeline(timeline, png, f"interests of user {args.user_id} over time")
    print(f"chart: {png}")


def _explain(args):
    from tf_profiles.profiles.explain import explain
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) as store:
        explanation = explain(_builder(args, store), store, args.user_id, args.item_id,
                              top=args.top)
    print(json.dumps(dataclasses.asdict(explanation), indent=2) if args.json
          else explanation.summary())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tf-profiles", description="User profiles for recommenders with a language model.")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="write a built-in dataset in the generic format")
    data.add_argument("name", choices=["ml-100k"])
    data.add_argument("--out", required=True, help="folder for interactions/items/users.csv")
    data.add_argument("--source", help="folder with ml-100k.{inter,item,user} "
                      "(default: inside the installed recbole wheel)")
    data.set_defaults(run=_data)

    train = commands.add_parser("train", help="train a two-tower model")
    train.add_argument("--interactions", required=True, help="user_id,item_id,timestamp[,rating]")
    train.add_argument("--items", required=True, help="item_id,title[,description][,tags]")
    train.add_argument("--users", help="user_id[,attributes...][,text]")
    train.add_argument("--output", required=True, help="model folder to write")
    train.add_argument("--epochs", type=int)
    train.add_argument("--encoder", help="local BERT checkpoint folder (default: all-MiniLM-L6-v2)")
    train.add_argument("--encoder-mode", choices=["frozen", "finetune"])
    train.add_argument("--protocol", choices=["loo", "cold-items", "cold-users"],
                       help="which split to train on (default loo)")
    train.add_argument("--seed", type=int)
    train.add_argument("--config", help="JSON file of TrainConfig fields")
    train.add_argument("--skip-bad-rows", action="store_true",
                       help="drop and count bad rows instead of stopping at the first")
    train.add_argument("--cache-dir", help="text-embedding cache (default ~/.cache/tf_profiles)")
    train.add_argument("--strategy", choices=["default", "mirrored", "multi-worker"],
                       default="default", help="tf.distribute strategy: one device, every "
                       "local GPU, or the workers of TF_CONFIG (docs/distributed_training.md)")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="full-ranking evaluation with baselines")
    evaluate.add_argument("--model", required=True, help="model folder written by train")
    evaluate.add_argument("--output", help="where evaluation.{md,json,png} go (default: --model)")
    evaluate.add_argument("--no-baselines", action="store_true")
    evaluate.set_defaults(run=_evaluate)

    export = commands.add_parser("export", help="write a versioned SavedModel for TF Serving")
    export.add_argument("--model", required=True, help="model folder written by train")
    export.add_argument("--export-base", required=True, help="e.g. saved_models/NAME")
    export.add_argument("--version", type=int, help="default: the next integer")
    export.add_argument("--k", type=int, default=100, help="items per recommendation")
    export.add_argument("--float16", action="store_true", help="float16 compute (GPUs)")
    export.add_argument("--max-batch-size", type=int, default=256,
                        help="max_batch_size written to the batching parameters")
    export.add_argument("--store", help="serve the events and users of this profile store "
                        "(default: the model's training data)")
    export.set_defaults(run=_export)

    shards = commands.add_parser(
        "export-shards", help="index-only SavedModels over slices of the catalogue "
                              "(sharded retrieval; the client merges)")
    shards.add_argument("--model", required=True, help="model folder written by train")
    shards.add_argument("--export-base", required=True, help="the models folder, e.g. saved_models")
    shards.add_argument("--name", required=True, help="shard i is the model NAME-shard-i")
    shards.add_argument("--shards", type=int, required=True, help="how many shards")
    shards.add_argument("--k", type=int, default=130,
                        help="items per shard answer: K + the widest history to exclude")
    shards.add_argument("--store", help="also index the items of this profile store")
    shards.add_argument("--version", type=int, help="default: the next free in every shard")
    shards.add_argument("--main-model", help="list this model (answering user_embedding) "
                                             "in the written models.config too")
    shards.add_argument("--models-root", default="/models",
                        help="where TF Serving finds the models (models.config paths)")
    shards.add_argument("--cache-dir", help="text-embedding cache for the store's new items")
    shards.set_defaults(run=_export_shards)

    serve = commands.add_parser(
        "serve", help="local PredictionService for development (production: TF Serving)")
    serve.add_argument("--model-name")
    serve.add_argument("--model-base-path")
    serve.add_argument("--model-config-file", help="TF Serving models.config")
    serve.add_argument("--port", type=int, default=8500)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--file-system-poll-wait-seconds", type=float, default=1.0)
    serve.set_defaults(run=_serve)

    query = commands.add_parser("query", help="ask a running server (TF Serving or local)")
    query.add_argument("what", choices=["lookup", "recommend", "status", "metadata"])
    query.add_argument("ids", nargs="*", help="user ids")
    query.add_argument("--server", default="127.0.0.1:8500")
    query.add_argument("--model-name", required=True)
    query.add_argument("--version", type=int)
    query.add_argument("--version-label")
    query.add_argument("--history", nargs="*", help="item ids, oldest first (recommend)")
    query.add_argument("--text", help="user text (recommend)")
    query.add_argument("--top", type=int, default=10)
    query.add_argument("--timeout", type=float, default=10.0)
    query.add_argument("--max-batch-size", type=int, default=256)
    query.set_defaults(run=_query)

    ingest = commands.add_parser("ingest", help="add events to the profile store")
    ingest.add_argument("file", help="user_id,item_id,timestamp[,rating][,event_id]")
    ingest.add_argument("--store", required=True, help="SQLite file (created if missing)")
    ingest.add_argument("--items", help="items file to add or update first")
    ingest.add_argument("--users", help="users file to add or update first")
    ingest.add_argument("--batch-size", type=int, default=10_000,
                        help="events per transaction")
    ingest.add_argument("--show-rejected", type=int, default=20)
    ingest.set_defaults(run=_ingest)

    delete = commands.add_parser("delete-user", help="remove a user's events and profile")
    delete.add_argument("user_id")
    delete.add_argument("--store", required=True)
    delete.set_defaults(run=_delete_user)

    def model_and_store(command, model_required=True):
        command.add_argument("--store", required=True, help="profile store (SQLite file)")
        command.add_argument("--model", required=model_required,
                             help="model folder written by train (or a fine-tune)")
        command.add_argument("--half-life-days", type=float, default=90.0,
                             help="recency decay of interests")
        command.add_argument("--cache-dir", help="text-embedding cache for new texts")

    refresh = commands.add_parser(
        "refresh", help="fast path: recompute the profiles of users with new data (no training)")
    model_and_store(refresh)
    refresh.add_argument("--all", action="store_true", help="recompute every profile")
    refresh.add_argument("--batch-size", type=int, default=2048, help="users per batch")
    refresh.set_defaults(run=_refresh)

    update = commands.add_parser(
        "update", help="ingest → refresh profiles → (fine-tune) → publish a new version")
    update.add_argument("file", help="new events: user_id,item_id,timestamp[,rating][,event_id]")
    model_and_store(update)
    update.add_argument("--items", help="items file to add or update first")
    update.add_argument("--users", help="users file to add or update first")
    update.add_argument("--batch-size", type=int, default=10_000, help="events per transaction")
    update.add_argument("--show-rejected", type=int, default=20)
    update.add_argument("--refresh-batch-size", type=int, default=2048)
    update.add_argument("--export-base", help="publish a new version here (e.g. saved_models/NAME)")
    update.add_argument("--k", type=int, default=100, help="items per recommendation")
    update.add_argument("--finetune-output",
                        help="also fine-tune (warm start) into this new model folder; "
                             "published only if held-out NDCG@10 holds")
    update.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs")
    update.add_argument("--learning-rate", type=float, default=5e-4)
    update.add_argument("--max-ndcg-drop", type=float, default=0.005,
                        help="refuse the fine-tuned model if held-out NDCG@10 falls more")
    update.set_defaults(run=_update)

    profile = commands.add_parser("profile", help="read a user's profile")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    show = profile_commands.add_parser(
        "show", help="the profile as text and a PNG of interest weights over time")
    show.add_argument("user_id")
    show.add_argument("--store", required=True)
    show.add_argument("--png", help="chart path (default profile_<ID>.png)")
    show.add_argument("--half-life-days", type=float, default=90.0)
    show.set_defaults(run=_profile_show)

    why = commands.add_parser("explain", help="why an item is recommended to a user")
    why.add_argument("user_id")
    why.add_argument("item_id")
    model_and_store(why)
    why.add_argument("--top", type=int, default=3, help="history items shown")
    why.add_argument("--json", action="store_true")
    why.set_defaults(run=_explain)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU features) drowns
    # the programs' own output; an explicit setting still wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_profiles  # noqa: F401  (sets up Keras 2 before TensorFlow loads)
    import grpc
    from tf_profiles.data.loaders import DataError
    from tf_profiles.text.encoder import CheckpointError

    try:
        code = args.run(args)
    except (DataError, CheckpointError, ValueError) as error:
        print(f"tf-profiles {args.command}: error: {error}", file=sys.stderr)
        return 2
    except grpc.RpcError as error:
        print(f"tf-profiles {args.command}: {error.code().name}: {error.details()}",
              file=sys.stderr)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
