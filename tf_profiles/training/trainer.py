"""``tf-profiles train``: split, embed text once, fit the two-tower model, save."""
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_profiles.bundle.config import TrainConfig
from tf_profiles.bundle.model_dir import (Catalogue, ModelDir, build_catalogue,
                                          embed_catalogue_texts)
from tf_profiles.data.loaders import Dataset
from tf_profiles.data.splits import make_split
from tf_profiles.evaluation.protocol import eval_rows
from tf_profiles.evaluation.scoring import held_out_metrics
from tf_profiles.features import spec
from tf_profiles.features.examples import (sequence_examples, target_items,
                                           training_examples)
from tf_profiles.features.feedback import needs_text_feedback, with_head_feedback
from tf_profiles.features.preprocessor import Preprocessor
from tf_profiles.features.queries import with_queries
from tf_profiles.models.item_tower import ItemTower
from tf_profiles.models.two_tower import TwoTowerModel
from tf_profiles.models.user_tower import UserTower
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.encoder import TextEncoder, default_checkpoint
from tf_profiles.text.sentiment import SentimentHead, train_default_head
from tf_profiles.training.distribute import is_chief, remove_writing_dir, writing_dir
from tf_profiles.evaluation.plots import plot_training_curves


def build_preprocessor(config: TrainConfig, catalogue: Catalogue, item_vocabulary,
                       user_vocabulary, encoder: TextEncoder,
                       sentiment: Optional[SentimentHead] = None) -> Preprocessor:
    """The Preprocessor of a new model: the vocabularies it trains ID embeddings
    for, the catalogue's text, ``encoder`` and its ``sentiment`` head."""
    preprocessor = Preprocessor(
        item_vocabulary, user_vocabulary, encoder.output_dim, config.max_history, encoder,
        item_catalogue=catalogue.items["item_id"].tolist(),
        user_catalogue=catalogue.users["user_id"].tolist(), sentiment=sentiment)
    preprocessor.set_item_text(catalogue.item_text_embeddings)
    preprocessor.set_users(catalogue.user_text_embeddings)
    return preprocessor


def build_model(config: TrainConfig, preprocessor: Preprocessor) -> TwoTowerModel:
    """The default architecture for a config; call inside a strategy scope.

    With ``config.mixed_precision`` the towers compute in float16 (weights
    stay float32). The policy is global in Keras, so it is set only while the
    layers are built: TFRS creates helper layers inside its loss call, and
    those must stay float32.
    """
    previous_policy = tf.keras.mixed_precision.global_policy()
    if config.mixed_precision:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        text_dim = preprocessor.text_dim
        item_tower = ItemTower(len(preprocessor.item_vocabulary), text_dim,
                               config.embedding_dim, config.id_dropout,
                               use_id=config.use_item_ids, use_text=config.use_item_text,
                               use_bias=config.item_bias)
        user_tower = UserTower(len(preprocessor.user_vocabulary), text_dim,
                               config.embedding_dim, config.max_history, config.num_layers,
                               config.num_heads, config.dropout, use_id=config.use_user_ids,
                               use_text=config.use_user_text, use_history=config.use_history,
                               causal=config.recipe == "causal",
                               id_dropout=config.user_id_dropout)
        return TwoTowerModel(preprocessor, user_tower, item_tower,
                             temperature=config.temperature, logq_strength=config.logq_strength,
                             negatives=config.negatives, mask_seen=config.mask_seen)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)


# What selects the epoch (and, in benchmarks/tune.py, the hyper-parameters).
VALIDATION_METRIC = "val_ndcg@10"


class ValidationCallback(tf.keras.callbacks.Callback):
    """Full-ranking NDCG@10 and Recall@10 on the validation events after each epoch."""

    def __init__(self, rows):
        super().__init__()
        self.rows = rows

    def on_epoch_end(self, epoch, logs=None):
        metrics = held_out_metrics(self.model, self.rows)
        logs[VALIDATION_METRIC] = metrics["NDCG@10"]
        logs["val_recall@10"] = metrics["Recall@10"]


class EpochLine(tf.keras.callbacks.Callback):
    """One line per epoch (loss, validation metrics, seconds), for a stdout that
    is not a terminal: there Keras' per-batch progress bar writes a line per
    update into the log."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        validation = ""
        if VALIDATION_METRIC in logs:
            validation = (f" - val NDCG@10 {logs.pop(VALIDATION_METRIC):.4f} "
                          f"Recall@10 {logs.pop('val_recall@10', float('nan')):.4f}")
        losses = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
        print(f"Epoch {epoch + 1}/{self.params['epochs']}: {losses}{validation} "
              f"({time.perf_counter() - self.started:.1f} s)", flush=True)


def progress() -> dict:
    """``model.fit`` arguments: Keras' progress bar in a terminal (its last
    update shows the validation metrics), else one :class:`EpochLine` per epoch."""
    if sys.stdout.isatty():
        return {"verbose": 1}
    return {"verbose": 0, "callbacks": [EpochLine()]}


class EpochTimes(tf.keras.callbacks.Callback):
    """Seconds of training per epoch (listed first: the validation is not counted)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


class TrainedWeightsCheckpoint(tf.keras.callbacks.Callback):
    """After each epoch, ``directory/epoch-NNN``: a ``tf.train.Checkpoint`` of what
    training changes — the towers, and the encoder when it is fine-tuned.

    Keras's ModelCheckpoint would write every weight each epoch, the frozen
    encoder's too (~90 MB for MiniLM); it is saved once, in model.keras.
    Restore with ``tf.train.Checkpoint(user_tower=..., item_tower=...).read(path)``.
    """

    def __init__(self, directory: Path):
        super().__init__()
        self.directory = directory

    def on_epoch_end(self, epoch, logs=None):
        parts = {"user_tower": self.model.user_tower, "item_tower": self.model.item_tower}
        if self.model.preprocessor.encoder.trainable_weights:
            parts["encoder"] = self.model.preprocessor.encoder
        tf.train.Checkpoint(**parts).write(str(self.directory / f"epoch-{epoch + 1:03d}"))


def input_pipeline(examples, batch_size, seed):
    """Shuffled batches of raw examples (the model's Preprocessor runs in the step)."""
    tensors = {key: value.astype(str) if value.dtype == object else value
               for key, value in examples.items()}
    count = len(next(iter(tensors.values())))
    # In-memory tensors have no files to shard by. Sharding by data, every
    # worker builds the same shuffled global batches and keeps its replicas'
    # slices of each, so the global batch is the one-worker batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (tf.data.Dataset.from_tensor_slices(tensors)
            .shuffle(count, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options))


def train(dataset: Dataset, config: TrainConfig, output_dir, cache_dir=None,
          strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    """Trains a model on ``dataset`` and writes the model folder.

    Args:
      dataset: loaded, validated data.
      config: hyper-parameters and protocol.
      output_dir: the model folder (see :mod:`tf_profiles.bundle.model_dir`).
      cache_dir: text-embedding cache (default ~/.cache/tf_profiles).
      strategy: a ``tf.distribute`` strategy (see
        :mod:`tf_profiles.training.distribute`); default: the default strategy.
        ``config.batch_size`` is the global batch. Only the chief writes
        ``output_dir``; a restarted run resumes from ``output_dir/backup``.

    Returns:
      The metrics written to ``metrics.json``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    target = ModelDir(writing_dir(Path(output_dir), strategy))
    target.path.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(config.encoder) if config.encoder else default_checkpoint()
    config_record = {**config.to_dict(), "encoder": str(checkpoint)}
    target.config_file.write_text(json.dumps(config_record, indent=2))

    finetuning = config.encoder_mode == "finetune"
    with strategy.scope():
        encoder = TextEncoder.from_checkpoint(
            checkpoint, max_length=config.text_max_length,
            trainable_layers=config.trainable_layers if finetuning else 0)
        sentiment, interactions = _text_feedback(dataset.interactions, encoder, config,
                                                 cache_dir)
    split = make_split(config.protocol, interactions, seed=config.split_seed,
                       item_ids=list(dataset.items.index), holdout=config.holdout,
                       period=config.period, periods_back=config.periods_back)
    split.save(target.split_dir)
    if config.refit:
        # Validation events train too; the saved split keeps them apart, so
        # evaluation reads the same known events and test as before.
        split = dataclasses.replace(
            split, train=pd.concat([split.train, split.valid], ignore_index=True),
            valid=split.valid.iloc[:0])
    catalogue = build_catalogue(dataset, encoder, cache_dir)
    catalogue.save(target.catalogue_dir)

    examples = _examples(split, catalogue, config, with_text=finetuning)
    if config.query_fraction:
        # Request-time intent: some examples' user text is a query naming the
        # target's tags or title, which replaces the stored text.
        examples = with_queries(examples, catalogue.items, config.query_fraction, config.seed)

    # Seeded here, after the text embeddings: whether they came from the cache
    # or were computed must not change the model's random state.
    tf.keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        preprocessor = build_preprocessor(
            config, catalogue, sorted(split.train["item_id"].unique()),
            sorted(split.train["user_id"].unique()), encoder, sentiment)
        model = build_model(config, preprocessor)
        model.compile(optimizer=make_optimizer(config, len(examples[spec.USER_ID])))
        # Built before fit (on a padding example), so that BackupAndRestore
        # restores into existing variables.
        model.build_from_config(model.get_build_config())

    epoch_times = EpochTimes()
    callbacks = _callbacks(target, Path(output_dir), split, config, strategy, epoch_times)
    started = time.perf_counter()
    shown = progress()
    with _texts_embedded_once(preprocessor, examples, finetuning, cache_dir):
        history = model.fit(input_pipeline(examples, config.batch_size, config.seed),
                            epochs=config.epochs, verbose=shown["verbose"],
                            callbacks=callbacks + shown.get("callbacks", []))
    model.train_function = None  # traced with the known texts: never reused without them
    seconds = time.perf_counter() - started
    if finetuning:
        # The stored text tables must be what the trained encoder computes,
        # or stored and request text would embed differently (train/serve skew).
        catalogue = _reembed(catalogue, model.preprocessor, cache_dir)
        catalogue.save(target.catalogue_dir)

    stopping = [c for c in callbacks if isinstance(c, tf.keras.callbacks.EarlyStopping)]
    metrics = {
        "train_seconds": round(seconds, 1),
        # The epoch whose weights were kept: the best on validation, or the
        # last one without early stopping.
        "selected_epochs": (int(np.argmax(history.history[VALIDATION_METRIC])) + 1 if stopping
                            else len(epoch_times.seconds)),
        "epoch_seconds": [round(s, 3) for s in epoch_times.seconds],
        "replicas": strategy.num_replicas_in_sync,
        "examples": int(len(examples[spec.USER_ID])),
        "targets": int(len(target_items(examples))),
        "items_in_vocabulary": len(preprocessor.item_vocabulary),
        "users_in_vocabulary": len(preprocessor.user_vocabulary),
        "skipped_rows": dataset.skipped,
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
    }
    target.write_model(model, metrics)  # every worker: saving reads distributed variables
    plot_training_curves(metrics["history"], target.curves_file)
    remove_writing_dir(target.path, strategy)
    return metrics


def _text_feedback(interactions, encoder: TextEncoder, config: TrainConfig, cache_dir):
    # Events with text and no rating get their rating from a sentiment head
    # on the model's own (still untrained) encoder, fitted on labelled
    # reviews; the head is saved with the model so that serving, profiles
    # and later events read text the same way.
    if not needs_text_feedback(interactions).any():
        return None, interactions
    sentiment = train_default_head(encoder, cache_dir, seed=config.seed)
    return sentiment, with_head_feedback(interactions, encoder, sentiment, cache_dir)


def _texts_embedded_once(preprocessor: Preprocessor, examples: dict, finetuning: bool,
                         cache_dir):
    # With a frozen encoder the examples' user texts are pseudo-queries, a
    # few thousand distinct strings: embedded once (and cached) instead of
    # once per batch in every step. A fine-tuned encoder must see its text.
    texts = sorted(set(examples.get(spec.USER_TEXT, ())) - {""})
    if finetuning or not texts:
        return contextlib.nullcontext()
    return preprocessor.known_texts(texts, embed_texts(texts, preprocessor.encoder, cache_dir))


def make_optimizer(config: TrainConfig, examples: int) -> tf.keras.optimizers.Optimizer:
    """Adam at ``config.learning_rate``, decayed by ``config.learning_rate_decay``
    per epoch of ``examples`` examples."""
    if config.learning_rate_decay == 1.0:
        return tf.keras.optimizers.Adam(config.learning_rate)
    steps_per_epoch = max(1, -(-examples // config.batch_size))
    return tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, steps_per_epoch, config.learning_rate_decay))


def _examples(split, catalogue: Catalogue, config: TrainConfig, with_text: bool) -> dict:
    if config.recipe == "causal":
        examples = sequence_examples(split.train, config.max_history)
    else:
        examples = training_examples(split.train, config.max_history)
    if with_text and config.recipe == "causal":
        # Only the user text goes through the trainable encoder in the step:
        # the targets and negatives (every item) read the stored item text,
        # a memory bank refreshed when training ends.
        text_of_user = dict(zip(catalogue.users["user_id"], catalogue.users["text"]))
        examples[spec.USER_TEXT] = np.array(
            [text_of_user.get(u, "") for u in examples[spec.USER_ID]], object)
    elif with_text:
        # Candidate and user texts go through the trainable encoder in the
        # step; history items keep their stored embeddings (encoding B × H
        # texts per step would multiply the cost by H).
        text_of_item = dict(zip(catalogue.items["item_id"], catalogue.items["text"]))
        text_of_user = dict(zip(catalogue.users["user_id"], catalogue.users["text"]))
        examples[spec.ITEM_TEXT] = np.array([text_of_item[i] for i in examples[spec.ITEM_ID]],
                                            object)
        examples[spec.USER_TEXT] = np.array(
            [text_of_user.get(u, "") for u in examples[spec.USER_ID]], object)
    return examples


def _callbacks(target: ModelDir, output_dir: Path, split, config: TrainConfig, strategy,
               epoch_times: EpochTimes) -> list:
    callbacks = [
        epoch_times,
        tf.keras.callbacks.TensorBoard(log_dir=str(target.log_dir)),
        TrainedWeightsCheckpoint(target.checkpoint_dir),
        # Every worker restores from the chief's backup in the real folder
        # (shared storage on a cluster), not from its own writing folder.
        tf.keras.callbacks.BackupAndRestore(str(ModelDir(output_dir).backup_dir)),
    ]
    if len(split.valid) and is_chief(strategy):
        # On the chief only: it calls the towers directly (no collective ops),
        # so the other workers just wait at the next step's gradient sum.
        callbacks.insert(1, ValidationCallback(eval_rows(split, "valid", config.max_history)))
        # Stopping or restoring weights on the chief alone would leave the
        # other workers in a different step (mismatched collectives), so a
        # multi-worker run trains every epoch and keeps the last.
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # After the validation callback, whose metric it reads.
            callbacks.insert(2, tf.keras.callbacks.EarlyStopping(
                monitor=VALIDATION_METRIC, mode="max", patience=config.patience,
                restore_best_weights=True))
    return callbacks


def _reembed(catalogue: Catalogue, preprocessor: Preprocessor, cache_dir) -> Catalogue:
    items, users = embed_catalogue_texts(catalogue.items, catalogue.users,
                                         preprocessor.encoder, cache_dir)
    preprocessor.set_item_text(items)
    preprocessor.set_users(users)
    return Catalogue(catalogue.items, catalogue.users, items, users)
