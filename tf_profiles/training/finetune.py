"""The slow path: warm-start fine-tuning of a trained model on new events, with a guard.

Training starts from the previous model's weights (transfer learning, not a
run from scratch) and sees only examples whose target is a new event; their
histories are everything the user did before (the previous model's train,
valid and test events included: they are the user's past now).

The guard is a time-based holdout taken from the new events themselves: the
latest ``guard_fraction`` of them (by time; same-second events in the
split's seeded order) are not trained on. Both models rank them, full
ranking over the previous model's candidates, knowing every event before the
slice; a fine-tuned model whose NDCG@10 there falls more than
``max_ndcg_drop`` below the previous one's is not accepted for publishing.
The previous model's test events are never used to decide: they stay a
test set.

An accepted model has not trained on the guard slice. That is deliberate:
the slice is what showed the model is no worse, and its events still reach
serving through the users' histories (profiles are refreshed from every
stored event); the next fine-tune trains on them, again holding out its own
latest slice.
"""
import dataclasses
import shutil
import time
from pathlib import Path
from typing import Dict

import numpy as np
import pandas as pd
import tensorflow as tf

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.data.splits import Split, order_events
from tf_profiles.errors import UserError
from tf_profiles.evaluation.protocol import EvalRows, eval_rows
from tf_profiles.evaluation.scoring import held_out_metrics
from tf_profiles.features.examples import sequence_examples, target_items, training_examples
from tf_profiles.features.feedback import with_head_feedback
from tf_profiles.training.trainer import input_pipeline, progress

_KEY = ["user_id", "item_id", "timestamp"]


@dataclasses.dataclass
class FinetuneReport:
    """What a fine-tune did and what the guard decided.

    Attributes:
      ndcg_before, ndcg_after: NDCG@10 of the previous and the fine-tuned
        model on the guard slice.
      accepted: the fall was at most ``max_ndcg_drop``.
      examples: the new events trained on (the new events before the slice).
      guard_events: the new events in the guard slice.
      guard_users: the users ranked on it (those with an earlier event).
      seconds: fine-tuning time.
      output_dir: the fine-tuned model folder.
    """
    ndcg_before: float
    ndcg_after: float
    accepted: bool
    examples: int
    guard_events: int
    guard_users: int
    seconds: float
    output_dir: Path

    def summary(self) -> str:
        verdict = "accepted" if self.accepted else "REFUSED (guard NDCG@10 dropped too much)"
        return (f"fine-tuned on {self.examples} new events in {self.seconds:.1f} s; guard "
                f"(latest {self.guard_events} new events, {self.guard_users} users): "
                f"NDCG@10 {self.ndcg_before:.4f} → {self.ndcg_after:.4f}, {verdict}")


def new_events(model_dir: ModelDir, events: pd.DataFrame) -> pd.DataFrame:
    """``events`` the model's split (train, valid or test) does not hold."""
    split = model_dir.split()
    known = pd.concat([split.train, split.valid, split.test])[_KEY].astype(
        {"user_id": str, "item_id": str, "timestamp": "int64"})
    merged = events.astype({"timestamp": "int64"}).merge(
        known.drop_duplicates(), on=_KEY, how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge").reset_index(drop=True)


def guard_slice(fresh: pd.DataFrame, fraction: float, seed: int):
    """(earlier, latest): ``fresh`` split at its latest ``fraction`` by time.

    Same-second events are ordered by the seeded tie keys of
    :func:`tf_profiles.data.splits.order_events`, so a user's events on the
    two sides keep the order they have in every split.

    Raises:
      ValueError: ``fraction`` is not in (0, 1), or there are too few events
        to leave at least one on each side.
    """
    if not 0 < fraction < 1:
        raise UserError(f"guard_fraction must be in (0, 1), got {fraction}")
    size = max(1, int(round(fraction * len(fresh))))
    if size >= len(fresh):
        raise UserError(f"{len(fresh)} new event(s): too few to fine-tune on some and hold "
                        f"out the latest {fraction:.0%} as the guard")
    ordered = order_events(fresh, seed, by_user=False)
    return ordered.iloc[:-size].reset_index(drop=True), ordered.iloc[-size:].reset_index(drop=True)


@dataclasses.dataclass
class FinetuneData:
    """What a fine-tune trains on and how its guard judges.

    Attributes:
      examples: training examples whose targets are the new events before
        the guard slice; histories hold every earlier event.
      guard: the guard slice (the latest new events).
      rows: the guard's evaluation rows (known = every event before the slice).
    """
    examples: Dict[str, np.ndarray]
    guard: pd.DataFrame
    rows: EvalRows


def finetune_data(split: Split, fresh: pd.DataFrame, max_history: int, seed: int,
                  guard_fraction: float, recipe: str = "per-event") -> FinetuneData:
    """The examples and guard rows of fine-tuning on ``fresh`` after ``split``.

    Raises:
      ValueError: see :func:`guard_slice`; or no guard event is of a user
        with an earlier event on one of ``split.candidates``.
    """
    earlier_new, guard = guard_slice(fresh, guard_fraction, seed)
    # Every event before the guard slice, in the split's tie order. The
    # previous split's valid and test events are the users' past now, so they
    # are history; never targets: the new folder keeps that split, and
    # `evaluate` on it must still score test events no model trained on.
    past = order_events(pd.concat([split.train, split.valid, split.test,
                                   earlier_new.assign(is_new=True)], ignore_index=True), seed)
    is_new = past.pop("is_new").eq(True).to_numpy()
    # Both example makers re-sort stably, so their rows stay aligned with ``past``.
    if recipe == "causal":
        examples = sequence_examples(past, max_history, trained=is_new)
    else:
        examples = {key: value[is_new] for key, value in
                    training_examples(past, max_history).items()}
    # Ranked as in the temporal protocol: users with an earlier event, on the
    # slice's items new to them, among the previous model's candidates.
    try:
        rows = eval_rows(Split("temporal", past, past.iloc[:0], guard, split.candidates, seed),
                         "test", max_history)
    except ValueError as error:
        raise UserError(f"the guard slice (the latest {len(guard)} new events) has no event "
                        f"of a user with earlier events on a candidate item; raise "
                        f"guard_fraction") from error
    return FinetuneData(examples, guard, rows)


def finetune(model_dir, events: pd.DataFrame, output_dir, epochs: int = 1,
             learning_rate: float = 5e-4, max_ndcg_drop: float = 0.005,
             guard_fraction: float = 0.1, log=print) -> FinetuneReport:
    """Fine-tunes ``model_dir``'s model on the events it has not seen; writes ``output_dir``.

    Args:
      model_dir: a ``train`` (or earlier ``finetune``) folder.
      events: every known event (e.g. ``ProfileStore.events()``); those not
        in the model's split are the new ones.
      output_dir: the new model folder (same layout; its split and catalogue
        are the previous model's, so the next fine-tune's new events are
        again those since the full training, and ``evaluate`` on it scores
        the same test events).
      max_ndcg_drop: the largest accepted fall of the guard's NDCG@10 (absolute).
      guard_fraction: the latest share of the new events held out as the guard.

    Raises:
      ValueError: there are no new events, too few to hold out a guard
        slice, no guard event of a user with an earlier event on a
        candidate item, or ``output_dir`` exists.
    """
    source = ModelDir(Path(model_dir))
    source.check()
    target = ModelDir(Path(output_dir))
    if target.path.exists():
        raise UserError(f"{target.path} exists already; fine-tuning writes a new model folder")
    config, split = source.config(), source.split()
    fresh = new_events(source, events)
    if fresh.empty:
        raise UserError(f"no events newer than {source.path}'s training data to fine-tune on")
    model = source.load_model()
    # New reviews without stars vote through the model's sentiment head, as in training.
    fresh = with_head_feedback(fresh, model.preprocessor.encoder, model.preprocessor.sentiment)
    data = finetune_data(split, fresh, config.max_history, config.split_seed, guard_fraction,
                         config.recipe)
    examples, rows = data.examples, data.rows

    before = held_out_metrics(model, rows)["NDCG@10"]
    started = time.perf_counter()
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate))
    model.fit(input_pipeline(examples, config.batch_size, config.seed), epochs=epochs,
              **progress())
    seconds = time.perf_counter() - started
    after = held_out_metrics(model, rows)["NDCG@10"]

    # Written beside, then renamed: a half-written folder is never a model.
    staging = target.path.with_name(f".{target.path.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in (source.split_dir.name, source.catalogue_dir.name):
        shutil.copytree(source.path / name, staging / name)
    shutil.copy(source.config_file, staging / source.config_file.name)
    report = FinetuneReport(round(before, 6), round(after, 6),
                            bool(after >= before - max_ndcg_drop),
                            len(target_items(examples)), len(data.guard), len(rows.users),
                            round(seconds, 1), target.path)
    ModelDir(staging).write_model(model, {
        "finetuned_from": str(source.path.resolve()), "new_events": int(len(fresh)),
        # No validation selects among fine-tuning epochs: all of them are kept.
        "selected_epochs": epochs,
        "examples": report.examples, "epochs": epochs, "learning_rate": learning_rate,
        "train_seconds": report.seconds, "guard_fraction": guard_fraction,
        "guard_events": report.guard_events, "guard_users": report.guard_users,
        "guard_since": int(data.guard["timestamp"].min()),
        "guard_ndcg@10_before": report.ndcg_before, "guard_ndcg@10_after": report.ndcg_after,
        "max_ndcg_drop": max_ndcg_drop, "accepted": report.accepted,
        "items_in_vocabulary": len(model.preprocessor.item_vocabulary),
        "new_items_seen": int(np.sum(~pd.Series(target_items(examples)).isin(
            model.preprocessor.item_vocabulary))),
    })
    staging.rename(target.path)
    log(report.summary())
    return report
