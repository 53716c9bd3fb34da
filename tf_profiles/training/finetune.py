"""The slow path: warm-start fine-tuning of a trained model on new events, with a guard.

Training starts from the previous model's weights (transfer learning, not a
run from scratch) and sees only examples whose target is a new event; their
histories are everything the user did before. The previous model's test
events stay held out, so the guard compares both models on the same rows:
a fine-tuned model whose held-out NDCG@10 falls more than ``max_ndcg_drop``
below the previous one's is not accepted for publishing.
"""
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.data.splits import sort_events
from tf_profiles.evaluation.protocol import eval_rows
from tf_profiles.evaluation.scoring import held_out_metrics
from tf_profiles.features import spec
from tf_profiles.features.examples import training_examples
from tf_profiles.training.trainer import input_pipeline

_KEY = ["user_id", "item_id", "timestamp"]


@dataclasses.dataclass
class FinetuneReport:
    """Attributes: held-out NDCG@10 before and after, whether the guard
    accepted the new model, the examples it trained on, and where it is."""
    ndcg_before: float
    ndcg_after: float
    accepted: bool
    examples: int
    seconds: float
    output_dir: Path

    def summary(self) -> str:
        verdict = "accepted" if self.accepted else "REFUSED (held-out NDCG@10 dropped too much)"
        return (f"fine-tuned on {self.examples} new events in {self.seconds:.1f} s: held-out "
                f"NDCG@10 {self.ndcg_before:.4f} → {self.ndcg_after:.4f}, {verdict}")


def new_events(model_dir: ModelDir, events: pd.DataFrame) -> pd.DataFrame:
    """``events`` the model's split (train, valid or test) does not hold."""
    split = model_dir.split()
    known = pd.concat([split.train, split.valid, split.test])[_KEY].astype(
        {"user_id": str, "item_id": str, "timestamp": "int64"})
    merged = events.astype({"timestamp": "int64"}).merge(
        known.drop_duplicates(), on=_KEY, how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge").reset_index(drop=True)


def finetune(model_dir, events: pd.DataFrame, output_dir, epochs: int = 1,
             learning_rate: float = 5e-4, max_ndcg_drop: float = 0.005,
             log=print) -> FinetuneReport:
    """Fine-tunes ``model_dir``'s model on the events it has not seen; writes ``output_dir``.

    Args:
      model_dir: a ``train`` (or earlier ``finetune``) folder.
      events: every known event (e.g. ``ProfileStore.events()``); those not
        in the model's split are the new ones.
      output_dir: the new model folder (same layout; its split and catalogue
        are the previous model's, so the guard stays comparable next time).
      max_ndcg_drop: the largest accepted fall of held-out NDCG@10 (absolute).

    Raises:
      ValueError: there are no new events, or ``output_dir`` exists.
    """
    source = ModelDir(Path(model_dir))
    source.check()
    target = ModelDir(Path(output_dir))
    if target.path.exists():
        raise ValueError(f"{target.path} exists already; fine-tuning writes a new model folder")
    config, split = source.config(), source.split()
    fresh = new_events(source, events)
    if fresh.empty:
        raise ValueError(f"no events newer than {source.path}'s training data to fine-tune on")
    # The held-out events never enter training, not even as history.
    log_events = pd.concat([split.train, fresh.assign(is_new=True)], ignore_index=True)
    log_events["is_new"] = log_events["is_new"].fillna(False).astype(bool)
    is_new = sort_events(log_events)["is_new"].to_numpy()
    examples = {key: value[is_new] for key, value in
                training_examples(log_events, config.max_history).items()}

    rows = eval_rows(split, "test", config.max_history)
    model = source.load_model()
    before = held_out_metrics(model, rows)["NDCG@10"]
    started = time.perf_counter()
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate))
    model.fit(input_pipeline(examples, config.batch_size, config.seed), epochs=epochs,
              verbose=2)
    seconds = time.perf_counter() - started
    after = held_out_metrics(model, rows)["NDCG@10"]

    # Written beside, then renamed: a half-written folder is never a model.
    staging = target.path.with_name(f".{target.path.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in (source.split_dir.name, source.catalogue_dir.name):
        shutil.copytree(source.path / name, staging / name)
    shutil.copy(source.config_file, staging / source.config_file.name)
    model.save(staging / source.model_file.name)
    report = FinetuneReport(round(before, 6), round(after, 6),
                            bool(after >= before - max_ndcg_drop),
                            int(is_new.sum()), round(seconds, 1), target.path)
    (staging / source.metrics_file.name).write_text(json.dumps({
        "finetuned_from": str(source.path.resolve()), "new_events": int(len(fresh)),
        "examples": report.examples, "epochs": epochs, "learning_rate": learning_rate,
        "train_seconds": report.seconds, "held_out_ndcg@10_before": report.ndcg_before,
        "held_out_ndcg@10_after": report.ndcg_after, "max_ndcg_drop": max_ndcg_drop,
        "accepted": report.accepted,
        "items_in_vocabulary": len(model.preprocessor.item_vocabulary),
        "new_items_seen": int(np.sum(~pd.Series(examples[spec.ITEM_ID]).isin(
            model.preprocessor.item_vocabulary))),
    }, indent=2))
    staging.rename(target.path)
    log(report.summary())
    return report
