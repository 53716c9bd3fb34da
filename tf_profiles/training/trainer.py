"""``tf-profiles train``: split, embed text once, fit the two-tower model, save."""
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_profiles.data import schema
from tf_profiles.data.examples import training_examples
from tf_profiles.data.loaders import Dataset
from tf_profiles.data.splits import make_split
from tf_profiles.evaluation.protocol import eval_rows
from tf_profiles.evaluation.scoring import held_out_metrics
from tf_profiles.models.item_tower import ItemTower
from tf_profiles.models.two_tower import ITEM_TEXT, USER_TEXT, TwoTowerModel
from tf_profiles.models.user_tower import UserTower
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.encoder import TextEncoder, default_checkpoint
from tf_profiles.text.render import render_item_text, render_user_text
from tf_profiles.training.artifacts import Catalogue, ModelDir
from tf_profiles.training.config import TrainConfig
from tf_profiles.training.distribute import is_chief, remove_writing_dir, writing_dir
from tf_profiles.training.plots import plot_training_curves


def build_catalogue(dataset: Dataset, checkpoint: Path, max_length: int,
                    cache_dir=None) -> Catalogue:
    """Renders every item's and user's text and embeds it with the frozen encoder."""
    items = dataset.items.reset_index(drop=True)
    items = items.assign(text=[render_item_text(row) for row in items.to_dict("records")])
    known_users = sorted(set(dataset.interactions["user_id"]))
    if dataset.users is not None:
        users = dataset.users.reset_index(drop=True)
        extra = sorted(set(known_users) - set(users["user_id"]))
        users = pd.concat([users, pd.DataFrame({"user_id": extra})], ignore_index=True)
    else:
        users = pd.DataFrame({"user_id": known_users})
    users = users.fillna("").astype(str)
    users = users.assign(text=[render_user_text(row) for row in users.to_dict("records")])
    texts = items["text"].tolist() + users["text"].tolist()
    vectors = embed_texts(texts, checkpoint, cache_dir, max_length=max_length)
    return Catalogue(items, users, vectors[:len(items)], vectors[len(items):])


def build_model(config: TrainConfig, item_ids, user_ids, text_dim: int,
                text_encoder: Optional[TextEncoder] = None) -> TwoTowerModel:
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
        item_tower = ItemTower(item_ids, text_dim, config.embedding_dim, config.id_dropout)
        user_tower = UserTower(user_ids, text_dim, config.embedding_dim, config.max_history,
                               config.num_layers, config.num_heads, config.dropout)
        return TwoTowerModel(user_tower, item_tower, temperature=config.temperature,
                             logq_strength=config.logq_strength, text_encoder=text_encoder)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)


class ValidationCallback(tf.keras.callbacks.Callback):
    """Full-ranking NDCG@10 and Recall@10 on the validation events after each epoch."""

    def __init__(self, rows, candidate_text):
        super().__init__()
        self.rows, self.candidate_text = rows, candidate_text

    def on_epoch_end(self, epoch, logs=None):
        metrics = held_out_metrics(self.model, self.rows, self.candidate_text)
        logs["val_ndcg@10"] = metrics["NDCG@10"]
        logs["val_recall@10"] = metrics["Recall@10"]
        print(f" - val NDCG@10 {metrics['NDCG@10']:.4f} Recall@10 {metrics['Recall@10']:.4f}")


class EpochTimes(tf.keras.callbacks.Callback):
    """Seconds of training per epoch (listed first: the validation is not counted)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def _input_pipeline(examples, batch_size, seed):
    tensors = {key: value.astype(str) if value.dtype == object else value
               for key, value in examples.items()}
    # In-memory tensors have no files to shard by. Sharding by data, every
    # worker builds the same shuffled global batches and keeps its replicas'
    # slices of each, so the global batch is the one-worker batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (tf.data.Dataset.from_tensor_slices(tensors)
            .shuffle(len(tensors[schema.ITEM_ID]), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options))


def train(dataset: Dataset, config: TrainConfig, output_dir, cache_dir=None,
          strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    """Trains a model on ``dataset`` and writes the model folder.

    Args:
      dataset: loaded, validated data.
      config: hyper-parameters and protocol.
      output_dir: the model folder (see :mod:`tf_profiles.training.artifacts`).
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

    split = make_split(config.protocol, dataset.interactions, seed=config.seed,
                       item_ids=list(dataset.items.index))
    split.save(target.split_dir)
    catalogue = build_catalogue(dataset, checkpoint, config.text_max_length, cache_dir)
    catalogue.save(target.catalogue_dir)

    item_ids = sorted(split.train["item_id"].unique())
    user_ids = sorted(split.train["user_id"].unique())
    examples = training_examples(split.train, config.max_history)
    if config.encoder_mode == "finetune":
        text_of_item = dict(zip(catalogue.items["item_id"], catalogue.items["text"]))
        text_of_user = dict(zip(catalogue.users["user_id"], catalogue.users["text"]))
        examples[ITEM_TEXT] = np.array([text_of_item[i] for i in examples[schema.ITEM_ID]], object)
        examples[USER_TEXT] = np.array([text_of_user.get(u, "") for u in examples[schema.USER_ID]],
                                       object)

    # Seeded here, after the text embeddings: whether they came from the cache
    # or from a freshly built encoder must not change the model's random state.
    tf.keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        text_encoder = None
        if config.encoder_mode == "finetune":
            text_encoder = TextEncoder.from_checkpoint(
                checkpoint, max_length=config.text_max_length,
                trainable_layers=config.trainable_layers)
        model = build_model(config, item_ids, user_ids, catalogue.item_text_embeddings.shape[1],
                            text_encoder)
        model.item_tower.set_text_embeddings(catalogue.item_text(item_ids))
        model.user_tower.set_text_embeddings(catalogue.user_text(user_ids))
        model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
        # Built before fit (on a padding example), so that BackupAndRestore
        # restores into existing variables.
        model.build_from_config(model.get_build_config())

    epoch_times = EpochTimes()
    callbacks = [
        epoch_times,
        tf.keras.callbacks.TensorBoard(log_dir=str(target.log_dir)),
        tf.keras.callbacks.ModelCheckpoint(
            str(target.checkpoint_dir / "epoch-{epoch:03d}.weights.h5"),
            save_weights_only=True),
        # Every worker restores from the chief's backup in the real folder
        # (shared storage on a cluster), not from its own writing folder.
        tf.keras.callbacks.BackupAndRestore(str(ModelDir(Path(output_dir)).backup_dir)),
    ]
    if len(split.valid) and is_chief(strategy):
        # On the chief only: it calls the towers directly (no collective ops),
        # so the other workers just wait at the next step's gradient sum.
        rows = eval_rows(split, "valid", config.max_history)
        callbacks.insert(1, ValidationCallback(rows, catalogue.item_text(rows.candidates)))
    started = time.perf_counter()
    history = model.fit(_input_pipeline(examples, config.batch_size, config.seed),
                        epochs=config.epochs, callbacks=callbacks, verbose=1)
    seconds = time.perf_counter() - started

    model.save(target.model_file)  # every worker: saving reads distributed variables
    metrics = {
        "train_seconds": round(seconds, 1),
        "epoch_seconds": [round(s, 3) for s in epoch_times.seconds],
        "replicas": strategy.num_replicas_in_sync,
        "examples": int(len(examples[schema.ITEM_ID])),
        "items_in_vocabulary": len(item_ids), "users_in_vocabulary": len(user_ids),
        "skipped_rows": dataset.skipped,
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
    }
    target.metrics_file.write_text(json.dumps(metrics, indent=2))
    plot_training_curves(metrics["history"], target.curves_file)
    remove_writing_dir(target.path, strategy)
    return metrics
