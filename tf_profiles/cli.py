"""The ``tf-profiles`` console entry point.

Subcommand names and flags are a contract: other tools call them.
"""
import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

from tf_profiles import __version__, _keras_setup
from tf_profiles.errors import UserError


def _data(args):
    from tf_profiles.data.movielens import convert_ml100k

    paths = convert_ml100k(Path(args.out), Path(args.source) if args.source else None)
    for name, path in paths.items():
        print(f"{name}: {path}")


def _train(args):
    from tf_profiles.bundle.config import TrainConfig
    from tf_profiles.data.loaders import load_dataset
    from tf_profiles.training.distribute import make_strategy
    from tf_profiles.training.trainer import train

    strategy = make_strategy(args.strategy)  # first: multi-worker sets up TF's collectives
    epochs = _selected_epochs(args.epochs_from) if args.epochs_from else args.epochs
    # None leaves the --config file's (or the default) value.
    holdout = None if args.holdout is None else args.holdout == "protocol"
    overrides = dict(epochs=epochs, encoder=args.encoder, seed=args.seed,
                     protocol=args.protocol, encoder_mode=args.encoder_mode, holdout=holdout,
                     refit=args.refit or None)
    config = (TrainConfig.from_file(args.config, **overrides) if args.config else
              TrainConfig(**{k: v for k, v in overrides.items() if v is not None}))
    dataset = load_dataset(args.interactions, args.items, args.users,
                           skip_bad_rows=args.skip_bad_rows)
    for line in row_notes(dataset.skipped):
        print(line)
    metrics = train(dataset, config, args.output, cache_dir=args.cache_dir, strategy=strategy)
    print(f"trained in {metrics['train_seconds']} s; model folder: {args.output}")


def row_notes(skipped: dict) -> list:
    """What loading did to rows, as printed: the dropped rows, and apart from
    them the kept rows that were changed (texts cut to the length limit)."""
    from tf_profiles.data.loaders import KEPT_ROW_REASONS

    dropped = {k: v for k, v in skipped.items() if k not in KEPT_ROW_REASONS}
    kept = {k: v for k, v in skipped.items() if k in KEPT_ROW_REASONS}
    return ([f"skipped rows: {json.dumps(dropped)}"] if dropped else []) + (
        [f"kept rows, changed: {json.dumps(kept)}"] if kept else [])


def _selected_epochs(model_dir) -> int:
    """The epoch count validation selected in a held-out model folder (``--epochs-from``)."""
    from tf_profiles.bundle.model_dir import ModelDir

    path = ModelDir(model_dir).metrics_file
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"--epochs-from: cannot read {path}: {error}") from error
    if "selected_epochs" not in metrics:
        raise UserError(f"--epochs-from: {path} has no 'selected_epochs'; give a model "
                        f"folder trained with a held-out split (--holdout protocol)")
    print(f"epochs: {metrics['selected_epochs']} (selected on validation in {model_dir})")
    return int(metrics["selected_epochs"])


def _evaluate(args):
    from tf_profiles.evaluation.evaluate import evaluate, markdown_table

    evaluate(args.model, with_baselines=not args.no_baselines, output_dir=args.output)
    report = json.loads(((Path(args.output) if args.output else Path(args.model))
                         / "evaluation.json").read_text())
    print(markdown_table(report))


def _export(args):
    from tf_profiles.export.versions import export_model
    from tf_profiles.store.store import ProfileStore
    from tf_profiles.workflows.export_store import refresh_and_export

    options = dict(version=args.version, k=args.k, float16=args.float16,
                   half_life_days=args.half_life_days,
                   max_batch_size=args.max_batch_size,
                   exclude_consumed=not args.no_exclude_consumed,
                   serving_version=args.serving_version)
    if not args.store:
        export_model(args.model, args.export_base, **options)
        return
    with ProfileStore(args.store) as store:
        refresh_and_export(args.model, args.export_base, store, **options)


def _export_shards(args):
    from tf_profiles.export.shards import export_shards
    from tf_profiles.profiles.builder import ProfileBuilder
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) if args.store else contextlib.nullcontext() as store:
        builder = ProfileBuilder.from_model_dir(args.model, store, cache_dir=args.cache_dir)
    export_shards(builder.items["item_id"].tolist(), builder.item_embeddings(),
                  args.export_base, args.name, args.shards, k=args.k, version=args.version,
                  main_model=args.main_model, models_root=args.models_root)


def _check_serving(args):
    from tf_profiles.compat.check import check_serving

    problems = check_serving(args.dir, args.tf_version, static_only=args.static_only,
                             cache_dir=args.cache_dir)
    return 1 if problems else 0


def _serve(args):
    from tf_profiles.devserver.grpc_server import RequestLimits
    from tf_profiles.devserver.registry import ModelRegistry, ServedModel
    from tf_profiles.devserver.run import serve_forever

    if args.model_config_file:
        registry = ModelRegistry.from_config_file(args.model_config_file)
    elif args.model_name and args.model_base_path:
        registry = ModelRegistry([ServedModel(args.model_name, Path(args.model_base_path))])
    else:
        raise UserError("give --model-name and --model-base-path, or --model-config-file")
    limits = RequestLimits(args.max_request_rows, args.max_request_texts,
                           args.max_request_bytes, args.rest_read_seconds)
    serve_forever(registry, args.port, args.host, args.file_system_poll_wait_seconds,
                  rest_api_port=args.rest_api_port, limits=limits)


def _query(args):
    import pandas as pd

    from tf_profiles.serving.client import ServingClient

    if not args.model_name:
        raise UserError("--model-name is required: the served model to ask")
    with ServingClient(args.server, args.model_name, version=args.version,
                       version_label=args.version_label, timeout=args.timeout,
                       max_batch_size=args.max_batch_size, protocol=args.protocol) as client:
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
    from tf_profiles.store.ingest import ingest
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) as store:
        report = ingest(store, args.file, args.items, args.users, batch_size=args.batch_size)
    print("\n".join(report.lines(args.file, args.show_rejected)))


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
    from tf_profiles.store.store import ProfileStore
    from tf_profiles.workflows.update import Finetuning, update

    finetuning = (Finetuning(Path(args.finetune_output), args.epochs, args.learning_rate,
                             args.max_ndcg_drop) if args.finetune_output else None)
    with ProfileStore(args.store) as store:
        report = update(store, args.file, args.model, args.half_life_days, items=args.items,
                        users=args.users, batch_size=args.batch_size,
                        show_rejected=args.show_rejected,
                        refresh_batch_size=args.refresh_batch_size, cache_dir=args.cache_dir,
                        export_base=args.export_base, k=args.k, finetuning=finetuning)
    if report.refused:
        print(f"the fine-tuned model in {args.finetune_output} was not published; "
              f"the served profiles are refreshed with {args.model}", file=sys.stderr)
        return 3
    return 0


def _profile_show(args):
    from tf_profiles.profiles.show import profile_lines, write_interest_chart
    from tf_profiles.store.store import ProfileStore

    png = Path(args.png or f"profile_{args.user_id}.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    with ProfileStore(args.store) as store:
        print("\n".join(profile_lines(store, args.user_id)))
        # With a model, the chart reads the terms the stored interests read
        # (mined from item text when the catalogue has no tags).
        items = _builder(args, store).interest_items() if args.model else None
        terms = write_interest_chart(store, args.user_id, png, args.half_life_days, items)
    print(f"chart: {png}" + ("" if terms else " (empty: no interest terms; for a catalogue "
                                               "without tags pass --model to chart the "
                                               "phrases mined from item text)"))


def _explain(args):
    from tf_profiles.profiles.explain import explain
    from tf_profiles.store.store import ProfileStore

    with ProfileStore(args.store) as store:
        explanation = explain(_builder(args, store), store, args.user_id, args.item_id,
                              top=args.top)
    print(json.dumps(dataclasses.asdict(explanation), indent=2) if args.json
          else explanation.summary())


# === The parser: one function per subcommand ===

def _identifier(text: str) -> str:
    """An argparse type: an id read as loading and ingestion read them (spaces around dropped)."""
    return text.strip()


def _positive(text: str) -> int:
    """An argparse type: a whole number ≥ 1 (a count or a size)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ≥ 1")
    return value


def _add_data(commands):
    data = commands.add_parser("data", help="write a built-in dataset in the generic format")
    data.add_argument("name", choices=["ml-100k"], help="the dataset")
    data.add_argument("--out", required=True, help="folder for interactions/items/users.csv")
    data.add_argument("--source", help="folder with ml-100k.{inter,item,user} "
                      "(default: inside the installed recbole wheel)")
    data.set_defaults(run=_data)


def _add_train(commands):
    train = commands.add_parser("train", help="train a two-tower model")
    train.add_argument("--interactions", required=True, help="user_id,item_id,timestamp[,rating]")
    train.add_argument("--items", required=True, help="item_id,title[,description][,tags]")
    train.add_argument("--users", help="user_id[,attributes...][,text]")
    train.add_argument("--output", required=True, help="model folder to write")
    epochs = train.add_mutually_exclusive_group()
    epochs.add_argument("--epochs", type=int,
                        help="epoch cap (early stopping on validation may stop sooner); "
                             "default: the --config file's or TrainConfig's")
    epochs.add_argument("--epochs-from", metavar="DIR",
                        help="the epochs validation selected in this held-out model folder "
                             "(its metrics.json); for --holdout none")
    train.add_argument("--encoder", help="local BERT checkpoint folder (default: all-MiniLM-L6-v2)")
    train.add_argument("--encoder-mode", choices=["frozen", "finetune"],
                       help="keep the BERT encoder fixed, or fine-tune its top layers "
                            "(default: frozen)")
    train.add_argument("--protocol", choices=["loo", "temporal", "cold-items", "cold-users"],
                       help="which split to train on (default loo)")
    train.add_argument("--holdout", choices=["protocol", "none"],
                       help="protocol (default): hold out the protocol's valid and test "
                            "events; none: train on every event (the deployable model)")
    train.add_argument("--refit", action="store_true",
                       help="train on the training and validation events, the test held out "
                            "(with --epochs-from: the model to compare with the baselines, "
                            "which fit on the same events)")
    train.add_argument("--seed", type=int,
                       help="seeds weights, shuffling and dropout (default: 0); the split "
                            "has its own seed (split_seed in --config)")
    train.add_argument("--config", help="JSON file of TrainConfig fields")
    train.add_argument("--skip-bad-rows", action="store_true",
                       help="drop and count bad rows instead of stopping at the first")
    train.add_argument("--cache-dir", help="text-embedding cache (default ~/.cache/tf_profiles)")
    train.add_argument("--strategy", choices=["default", "mirrored", "multi-worker"],
                       default="default", help="tf.distribute strategy: one device, every "
                       "local GPU, or the workers of TF_CONFIG (docs/distributed_training.md)")
    train.set_defaults(run=_train)


def _add_evaluate(commands):
    evaluate = commands.add_parser("evaluate", help="full-ranking evaluation with baselines")
    evaluate.add_argument("--model", required=True, help="model folder written by train")
    evaluate.add_argument("--output", help="where evaluation.{md,json,png} go (default: --model)")
    evaluate.add_argument("--no-baselines", action="store_true",
                          help="score the model only (the baselines are tuned and fit "
                               "on the same events, which takes minutes)")
    evaluate.set_defaults(run=_evaluate)


def _add_export(commands):
    export = commands.add_parser("export", help="write a versioned SavedModel for TF Serving")
    export.add_argument("--model", required=True, help="model folder written by train")
    export.add_argument("--export-base", required=True, help="e.g. saved_models/NAME")
    export.add_argument("--version", type=int, help="default: the next integer")
    export.add_argument("--k", type=_positive, default=100, help="items per recommendation")
    export.add_argument("--float16", action="store_true", help="float16 compute (GPUs)")
    export.add_argument("--max-batch-size", type=_positive, default=256,
                        help="max_batch_size written to the batching parameters")
    export.add_argument("--store", help="serve the events and users of this profile store "
                        "(default: the model's training data)")
    _add_half_life(export)
    export.add_argument("--serving-version", help="TF Serving release X.Y.Z the docker and "
                        "Kubernetes files run (default: the installed TensorFlow's X.Y.0); "
                        "an older one must pass check-serving first")
    export.add_argument("--no-exclude-consumed", action="store_true",
                        help="recommend items a user already consumed again (music, groceries); "
                             "default: never")
    export.set_defaults(run=_export)


def _add_export_shards(commands):
    shards = commands.add_parser(
        "export-shards", help="index-only SavedModels over slices of the catalogue "
                              "(sharded retrieval; the client merges)")
    shards.add_argument("--model", required=True, help="model folder written by train")
    shards.add_argument("--export-base", required=True, help="the models folder, e.g. saved_models")
    shards.add_argument("--name", required=True, help="shard i is the model NAME-shard-i")
    shards.add_argument("--shards", type=int, required=True, help="how many shards")
    shards.add_argument("--k", type=_positive, default=130,
                        help="items per shard answer: K + the widest history to exclude")
    shards.add_argument("--store", help="also index the items of this profile store")
    shards.add_argument("--version", type=int, help="default: the next free in every shard")
    shards.add_argument("--main-model", help="list this model (answering user_embedding) "
                                             "in the written models.config too")
    shards.add_argument("--models-root", default="/models",
                        help="where TF Serving finds the models (models.config paths)")
    shards.add_argument("--cache-dir", help="text-embedding cache for the store's new items")
    shards.set_defaults(run=_export_shards)


def _add_check_serving(commands):
    check = commands.add_parser(
        "check-serving", help="can TF Serving X load and answer this export? (ops and "
                              "attributes, then its warm-up requests replayed in TensorFlow X)")
    check.add_argument("dir", help="an export version folder, or its base (the newest version)")
    check.add_argument("--tf-version", help="X.Y.Z of TF Serving and the TensorFlow it is built "
                       "on (default: the installed TensorFlow)")
    check.add_argument("--static-only", action="store_true",
                       help="ops and attributes only, no replay")
    check.add_argument("--cache-dir", help="where the TensorFlow X virtualenvs are kept "
                       "(default $TF_PROFILES_CACHE or ~/.cache/tf_profiles)")
    check.set_defaults(run=_check_serving)


def _add_serve(commands):
    serve = commands.add_parser(
        "serve", help="local PredictionService for development (production: TF Serving)")
    serve.add_argument("--model-name", help="serve one model under this name "
                       "(with --model-base-path)")
    serve.add_argument("--model-base-path", help="its versions folder, e.g. saved_models/NAME")
    serve.add_argument("--model-config-file", help="TF Serving models.config")
    serve.add_argument("--port", type=int, default=8500, help="gRPC port")
    serve.add_argument("--rest-api-port", type=int, default=8501,
                       help="TF Serving's REST API (0: off)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--file-system-poll-wait-seconds", type=float, default=1.0,
                       help="how often new versions are looked for (as TF Serving's flag)")
    serve.add_argument("--max-request-rows", type=_positive, default=10_000,
                       help="ids (rows of any input) one request may send")
    serve.add_argument("--max-request-texts", type=_positive, default=256,
                       help="non-empty texts one request may send (each is encoded by BERT)")
    serve.add_argument("--max-request-bytes", type=_positive, default=16 << 20,
                       help="one request's size in bytes (gRPC message or REST body)")
    serve.add_argument("--rest-read-seconds", type=float, default=30.0,
                       help="a REST client silent this long is disconnected")
    serve.set_defaults(run=_serve)


def _add_connection(parser, after_action: bool):
    """The server flags every query action takes, before or after the action's name
    (after it they default to nothing, so as not to undo the ones given before)."""
    def default(value):
        return argparse.SUPPRESS if after_action else value

    parser.add_argument("--server", default=default("127.0.0.1:8500"),
                        help="host:port (TF Serving: 8500 gRPC, 8501 REST)")
    parser.add_argument("--protocol", choices=["grpc", "rest"], default=default("grpc"),
                        help="the server's API")
    parser.add_argument("--model-name", default=default(None),
                        help="the served model's name (required)")
    parser.add_argument("--version", type=int, default=default(None),
                        help="pin a version (default: the newest)")
    parser.add_argument("--version-label", default=default(None),
                        help="pin a version label, e.g. stable")
    parser.add_argument("--timeout", type=float, default=default(10.0),
                        help="seconds per request")
    parser.add_argument("--max-batch-size", type=_positive, default=default(256),
                        help="users per request (more are sent in several)")


def _add_query(commands):
    query = commands.add_parser("query", help="ask a running server (TF Serving or local)")
    _add_connection(query, after_action=False)
    actions = query.add_subparsers(dest="what", required=True, metavar="ACTION")
    lookup = actions.add_parser("lookup", help="stored profiles of users")
    recommend = actions.add_parser("recommend", help="top items for users")
    status = actions.add_parser("status", help="the served versions and their state")
    metadata = actions.add_parser("metadata", help="the signatures of the served version")
    for action in (lookup, recommend):
        action.add_argument("ids", nargs="+", type=_identifier, help="user ids")
    recommend.add_argument("--history", nargs="*",
                           help="item ids, oldest first (default: the stored history)")
    recommend.add_argument("--text", help="user text (default: the stored text)")
    recommend.add_argument("--top", type=_positive, default=10, help="items shown per user")
    for action in (lookup, recommend, status, metadata):
        _add_connection(action, after_action=True)
    query.set_defaults(run=_query)


def _add_ingest_files(command):
    """The catalogue files and batching that ``ingest`` and ``update`` share."""
    command.add_argument("--items", help="items file to add or update first")
    command.add_argument("--users", help="users file to add or update first")
    command.add_argument("--batch-size", type=_positive, default=10_000, help="events per transaction")
    command.add_argument("--show-rejected", type=int, default=20,
                         help="rejected rows printed (all are counted)")


def _add_ingest(commands):
    ingest = commands.add_parser("ingest", help="add events to the profile store")
    ingest.add_argument("file", help="user_id,item_id,timestamp[,rating][,event_id]")
    ingest.add_argument("--store", required=True, help="SQLite file (created if missing)")
    _add_ingest_files(ingest)
    ingest.set_defaults(run=_ingest)


def _add_delete_user(commands):
    delete = commands.add_parser("delete-user", help="remove a user's events and profile")
    delete.add_argument("user_id", type=_identifier, help="the user to forget")
    delete.add_argument("--store", required=True, help="profile store (SQLite file)")
    delete.set_defaults(run=_delete_user)


def _add_half_life(command):
    command.add_argument("--half-life-days", type=float,
                         help="recency decay of interests: an event this many days older "
                              "than the user's latest counts half (default: the value the "
                              "store recorded, else 90); a new value is recorded and "
                              "recomputes every profile")


def _add_model_and_store(command):
    """The flags every command that builds profiles from a model takes."""
    command.add_argument("--store", required=True, help="profile store (SQLite file)")
    command.add_argument("--model", required=True,
                         help="model folder written by train (or a fine-tune)")
    _add_half_life(command)
    command.add_argument("--cache-dir", help="text-embedding cache for new texts")


def _add_refresh(commands):
    refresh = commands.add_parser(
        "refresh", help="fast path: recompute the profiles of users with new data (no training)")
    _add_model_and_store(refresh)
    refresh.add_argument("--all", action="store_true", help="recompute every profile")
    refresh.add_argument("--batch-size", type=_positive, default=2048, help="users per batch")
    refresh.set_defaults(run=_refresh)


def _add_update(commands):
    update = commands.add_parser(
        "update", help="ingest → refresh profiles → (fine-tune) → publish a new version")
    update.add_argument("file", help="new events: user_id,item_id,timestamp[,rating][,event_id]")
    _add_model_and_store(update)
    _add_ingest_files(update)
    update.add_argument("--refresh-batch-size", type=_positive, default=2048,
                        help="users per refresh batch")
    update.add_argument("--export-base", help="publish a new version here (e.g. saved_models/NAME)")
    update.add_argument("--k", type=_positive, default=100, help="items per recommendation")
    update.add_argument("--finetune-output",
                        help="also fine-tune (warm start) into this new model folder; "
                             "published only if its NDCG@10 on the latest new events "
                             "(the guard slice, never trained on) holds")
    update.add_argument("--epochs", type=_positive, default=1, help="fine-tuning epochs")
    update.add_argument("--learning-rate", type=float, default=5e-4,
                        help="fine-tuning learning rate")
    update.add_argument("--max-ndcg-drop", type=float, default=0.005,
                        help="refuse the fine-tuned model if its guard-slice NDCG@10 falls "
                             "more than this below the previous model's")
    update.set_defaults(run=_update)


def _add_profile(commands):
    profile = commands.add_parser("profile", help="read a user's profile")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    show = profile_commands.add_parser(
        "show", help="the profile as text and a PNG of interest weights over time")
    show.add_argument("user_id", type=_identifier, help="whose profile")
    show.add_argument("--store", required=True, help="profile store (SQLite file)")
    show.add_argument("--png", help="chart path (default profile_<ID>.png)")
    _add_half_life(show)
    show.add_argument("--model", help="model folder: chart the interest terms its profiles "
                                      "use (mined from item text when items have no tags)")
    show.add_argument("--cache-dir", help="text-embedding cache for mining item text")
    show.set_defaults(run=_profile_show)


def _add_explain(commands):
    why = commands.add_parser("explain", help="why an item is recommended to a user")
    why.add_argument("user_id", type=_identifier, help="the user")
    why.add_argument("item_id", type=_identifier, help="the recommended item")
    _add_model_and_store(why)
    why.add_argument("--top", type=_positive, default=3, help="history items shown")
    why.add_argument("--json", action="store_true", help="print JSON instead of text")
    why.set_defaults(run=_explain)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default after its help, unless it has none or says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default in (None, False, argparse.SUPPRESS) or "default" in text
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


EXIT_CODES = """exit codes:
  0  done
  1  a server answered with an error (its status is printed), or check-serving
     found problems; also a bug (Python prints its traceback)
  2  something to fix in the input: bad data, flags, settings or files (one line)"""


class _Parser(argparse.ArgumentParser):
    """Every command's parser (sub-parsers take their parent's class) shows defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tf-profiles", description="User profiles for recommenders with a language model.",
        epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up lines and warnings")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_data, _add_train, _add_evaluate, _add_export, _add_export_shards,
                _add_check_serving, _add_serve, _add_query, _add_ingest, _add_delete_user,
                _add_refresh, _add_update, _add_profile, _add_explain):
        add(commands)
    return parser


# Commands that only read files or the store: they start without TensorFlow.
WITHOUT_TENSORFLOW = ("data", "ingest", "delete-user")


def _needs_tensorflow(args) -> bool:
    """Whether the command loads TensorFlow (reading the store, loading data
    and the CLI's own help do not)."""
    if args.command == "profile":
        return bool(getattr(args, "model", None))
    return args.command not in WITHOUT_TENSORFLOW


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.verbose and _needs_tensorflow(args):
        _keras_setup.load_tensorflow_quietly()
    try:
        code = args.run(args)
    except UserError as error:
        print(f"tf-profiles {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        # Only a command that talked to a server has grpc loaded; checked by
        # name so that the others never import it.
        grpc = sys.modules.get("grpc")
        if grpc is None or not isinstance(error, grpc.RpcError):
            raise
        print(f"tf-profiles {args.command}: {error.code().name}: {error.details()}",
              file=sys.stderr)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
