"""Training configuration: every knob of ``tf-profiles train`` in one place."""
import dataclasses
import json
from pathlib import Path
from typing import Optional

from tf_profiles.errors import UserError
from tf_profiles.models.two_tower import NEGATIVES

ENCODER_MODES = ("frozen", "finetune")
# "causal": one example per user sequence, a prediction of the next event at
# every position (causal user tower, full softmax); "per-event": one example
# per event, its history read bidirectionally.
RECIPES = ("causal", "per-event")
# The per-event recipe's own values, chosen by its search on ml-100k
# validation (docs/benchmarks/tune_per_event.md) when it was the default;
# ``TrainConfig(**PER_EVENT)`` trains it (pseudo-queries need it).
PER_EVENT = {"recipe": "per-event", "epochs": 8, "patience": 2, "batch_size": 512,
             "learning_rate": 2e-3, "max_history": 30, "mask_seen": False,
             "item_bias": False, "user_id_dropout": 0.0, "learning_rate_decay": 1.0}


@dataclasses.dataclass
class TrainConfig:
    """Every setting of ``tf-profiles train``; ``--config FILE`` (JSON) overrides any.

    These defaults are the only ones: the model classes have the same
    (``tests/bundle/test_config.py``). The searched values (``mask_seen``,
    ``item_bias``, ``learning_rate``, ``dropout``, ``user_id_dropout``,
    ``max_history``, ``temperature``, ``num_layers``, ...) are the best trial
    of the causal recipe's search on ml-100k validation
    (docs/benchmarks/tune_model.md). The fields, by section:

    Data and split:
      protocol: which split trains the model (see ``tf_profiles.data.splits``).
      holdout: False trains on every event (the deployable model; nothing is
        held out, so there is no validation: set ``epochs`` to what a held-out
        run selected).
      refit: train on the training and validation events (the test stays
        held out, nothing validates: set ``epochs`` to what a held-out run
        selected). The model whose test score is compared with baselines,
        which also fit on training + validation events.
      period, periods_back: temporal protocol only: the test and validation
        periods' share of events (each), and how many periods before the
        latest the test period ends (rolling cut-offs: 0, 1, 2).
      split_seed: the split's random choices (same-second event order, the
        held-out item or user sample); fixed across model seeds, so runs with
        different ``seed`` are compared on the same split.

    Model:
      recipe: "causal" (a user's whole sequence per example, the next event
        predicted at every position against the whole catalogue: an epoch is
        one pass per sequence; a causal user tower) or "per-event" (one
        example per event, its history read bidirectionally; the only recipe
        for ``query_fraction``).
      embedding_dim: width of both towers' vectors (served vectors are one
        wider with ``item_bias``).
      max_history: the most recent events the user tower reads.
      num_layers, num_heads, dropout: the user tower's transformer blocks.
      id_dropout: share of training examples whose item is read as unknown
        (its text alone then places it: DropoutNet-style, for new items).
      user_id_dropout: share of training examples whose user is read as
        unknown, so that unknown users (ID row 0) get a trained vector.
      item_bias: score = [u, 1]·[v, b]: each item has a learned bias (a
        popularity prior; its text part gives a new item one), joined to its
        vector.
      temperature: softmax temperature on the unit-vector scores.
      negatives: "catalogue" (a full softmax over every item; "causal" needs
        it) or "in-batch" (TFRS's sampled softmax over the batch's items, for
        catalogues too large for a full softmax).
      logq_strength: the sampling-bias correction of "in-batch" negatives
        (1: full logQ, 0: none); it does nothing with "catalogue" negatives,
        the default, which have no sampling bias.
      mask_seen: "causal" only: leave the items a user already has out of
        each position's training softmax (evaluation and serving exclude them).
      use_item_ids, use_user_ids, use_item_text, use_user_text, use_history:
        which inputs the towers read (ablations; user text is the rendered
        user attributes).

    Optimisation:
      epochs: the most epochs; with validation events, training stops after
        ``patience`` epochs without a better validation NDCG@10 and keeps the
        best epoch's weights (``selected_epochs`` in metrics.json).
      patience: see ``epochs``.
      batch_size: examples per step: sequences ("causal") or events ("per-event").
      learning_rate: Adam's.
      learning_rate_decay: the learning rate is multiplied by this every
        epoch (smoothly, step by step); 1 keeps it constant. A refit for the
        epochs validation selected follows the same schedule.
      mixed_precision: compute in float16 (GPU only; weights stay float32).
      seed: weights, shuffling and dropout (the split has ``split_seed``).

    Text:
      encoder: BERT checkpoint folder; None = bundled all-MiniLM-L6-v2.
      encoder_mode: "frozen" (text embedded once and cached; fast on CPU) or
        "finetune" (the top ``trainable_layers`` encoder layers train; for GPUs).
      trainable_layers: see ``encoder_mode``.
      text_max_length: tokens of each text the encoder reads.
      query_fraction: the share of training examples whose user text is a
        pseudo-query made from the target item's tags or title ("something
        horror"), replacing the stored attribute text, so that a request's
        ``user_text`` steers the recommendations (see
        :mod:`tf_profiles.features.queries`); 0: none.
    """
    # === Data and split ===
    protocol: str = "loo"
    holdout: bool = True
    refit: bool = False
    period: float = 0.1
    periods_back: int = 0
    split_seed: int = 0
    # === Model ===
    recipe: str = "causal"
    embedding_dim: int = 64
    max_history: int = 100
    num_layers: int = 2
    num_heads: int = 2
    dropout: float = 0.2
    id_dropout: float = 0.1
    user_id_dropout: float = 0.1
    item_bias: bool = True
    temperature: float = 0.1
    negatives: str = "catalogue"
    logq_strength: float = 1.0
    mask_seen: bool = True
    use_item_ids: bool = True
    use_user_ids: bool = True
    use_item_text: bool = True
    use_user_text: bool = True
    use_history: bool = True
    # === Optimisation ===
    epochs: int = 100
    patience: int = 5
    batch_size: int = 64
    learning_rate: float = 5e-4
    learning_rate_decay: float = 1.0
    mixed_precision: bool = False
    seed: int = 0
    # === Text ===
    encoder: Optional[str] = None
    encoder_mode: str = "frozen"
    trainable_layers: int = 2
    text_max_length: int = 64
    query_fraction: float = 0.0

    def __post_init__(self):
        if self.encoder_mode not in ENCODER_MODES:
            raise UserError(f"encoder_mode {self.encoder_mode!r}: choose one of "
                            f"{', '.join(ENCODER_MODES)}")
        if self.negatives not in NEGATIVES:
            raise UserError(f"negatives {self.negatives!r}: choose one of "
                            f"{', '.join(NEGATIVES)}")
        if self.refit and not self.holdout:
            raise UserError("refit trains on training + validation events of a held-out "
                            "split; with holdout off every event trains already")
        if not 0.0 < self.period < 0.5 or self.periods_back < 0:
            raise UserError(f"period must be in (0, 0.5) and periods_back ≥ 0, got "
                            f"{self.period} and {self.periods_back}")
        if self.recipe not in RECIPES:
            raise UserError(f"recipe {self.recipe!r}: choose one of {', '.join(RECIPES)}")
        if self.recipe == "causal" and self.negatives != "catalogue":
            raise UserError("recipe 'causal' scores every position against the whole "
                            "catalogue: negatives must be 'catalogue'")
        if self.recipe == "causal" and self.query_fraction:
            raise UserError("query_fraction needs recipe 'per-event': a pseudo-query names "
                            "one target event, a causal example has one per position")
        if not 0.0 < self.learning_rate_decay <= 1.0:
            raise UserError(f"learning_rate_decay must be in (0, 1], got "
                            f"{self.learning_rate_decay}")
        if not 0.0 <= self.user_id_dropout < 1.0:
            raise UserError(f"user_id_dropout must be in [0, 1), got {self.user_id_dropout}")
        if not (self.use_item_ids or self.use_item_text):
            raise UserError("use_item_ids and use_item_text are both off: items have no input")
        for name in ("epochs", "patience", "batch_size", "embedding_dim", "max_history", "num_layers",
                     "num_heads", "text_max_length"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.embedding_dim % self.num_heads:
            raise UserError(f"embedding_dim {self.embedding_dim} is not divisible by "
                            f"num_heads {self.num_heads}")
        if not 0.0 <= self.query_fraction <= 1.0:
            raise UserError(f"query_fraction must be in [0, 1] (a share of the training "
                            f"examples), got {self.query_fraction}")

    @classmethod
    def from_file(cls, path, **overrides) -> "TrainConfig":
        """Reads a JSON file of fields; unknown keys are an error naming them."""
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{path}: cannot read training config: {error}") from error
        if not isinstance(values, dict):
            raise UserError(f"{path}: the config must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{path}: unknown config key(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)
