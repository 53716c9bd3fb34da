"""Baselines' parameters chosen on validation, every trial recorded.

:data:`REGISTRY` names each baseline with its function and search grid.
:func:`tune` scores every grid point on validation rows (full ranking, seen
items masked) and returns the best parameters and all trials (parameters,
metrics, seconds); :func:`tuned_scores` then scores the test rows once.

Grid sizes (ml-100k leave-one-out, 2 CPU cores: seconds per point):

========================  =====================================  ======
baseline                  grid                                   points
========================  =====================================  ======
mostpop                   –                                      1
ease                      l2: 10 … 2000 (8, log)                 8  (~1 s)
markov                    smoothing: 0 … 1000 (7)                   7  (~1 s)
cooc_knn                  window 4 × recent 3 × decay 4 ×        96 (~0.5 s)
                          distance_decay 2
tfrs_id                   learning_rate 2 (Adam, logQ; epochs    2  (~1 min)
                          chosen by early stopping)
tfrs_gru                  learning_rate 2 (as tfrs_id)           2  (~2 min)
content_knn               history 2 × weighting 2                4
text_popularity           l2 3 × content_weight 5                15
random                    –                                      1
========================  =====================================  ======
"""
import dataclasses
import itertools
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from tf_profiles.data.splits import Split, leave_one_out
from tf_profiles.errors import UserError
from tf_profiles.evaluation import baselines
from tf_profiles.evaluation.baselines import trained
from tf_profiles.evaluation.metrics import ranking_metrics
from tf_profiles.evaluation.protocol import EvalRows, eval_rows
from tf_profiles.models.ranking import exclude


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A baseline and the grid its parameters are searched over.

    Attributes:
      title: its name in tables.
      score: ``(rows, **params) -> [N, C]`` (takes ``item_text`` too when
        ``needs_text``); None for trained baselines, which score through
        their fitted model.
      grid: parameter → values tried (every combination).
      needs_text: the baseline reads item text embeddings.
      kind: trained TFRS baselines: :func:`trained.fit`'s kind (tuning
        trains with it and chooses the epoch on validation); None otherwise.
    """
    title: str
    score: Optional[Callable[..., np.ndarray]]
    grid: Mapping[str, Sequence] = dataclasses.field(default_factory=dict)
    needs_text: bool = False
    kind: Optional[str] = None


REGISTRY: Dict[str, Baseline] = {
    "mostpop": Baseline("MostPop", baselines.most_popular),
    "ease": Baseline("EASE", baselines.ease,
                     {"l2": [10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]}),
    "markov": Baseline("Markov chain", baselines.markov_chain,
                       {"smoothing": [0.0, 1.0, 10.0, 30.0, 100.0, 300.0, 1000.0]}),
    "cooc_knn": Baseline("Co-occurrence KNN", baselines.cooccurrence_knn, {
        "window": [3, 5, 10, 20], "recent": [5, 10, 20], "decay": [0.6, 0.7, 0.8, 0.9],
        "distance_decay": [1.0, 0.8]}),
    "tfrs_id": Baseline("TFRS ID two-tower", None,
                        {"learning_rate": [0.003, 0.01]}, kind="id"),
    "tfrs_gru": Baseline("TFRS GRU sequential", None,
                         {"learning_rate": [0.003, 0.01]}, kind="gru"),
    "content_knn": Baseline("Content KNN (text)", baselines.content_knn,
                            {"history": ["recent", "all"], "weighting": ["mean", "rating"]},
                            needs_text=True),
    "text_popularity": Baseline("Text → popularity", baselines.text_popularity,
                                {"l2": [1.0, 10.0, 100.0],
                                 "content_weight": [0.0, 0.25, 0.5, 0.75, 1.0]},
                                needs_text=True),
    "random": Baseline("Random", baselines.random_scores),
}


@dataclasses.dataclass
class Trial:
    """One grid point on validation.

    Attributes:
      params: the parameters (trained baselines: with the chosen ``epochs``).
      metrics: validation metrics (NDCG@10, HR@10, ...).
      seconds: wall time of fitting and scoring.
      curve: trained baselines: [(epoch, validation NDCG@10)].
    """
    params: dict
    metrics: Dict[str, float]
    seconds: float
    curve: List = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Tuning:
    """The outcome of :func:`tune`.

    Attributes:
      name: the registry name.
      metric: what was maximised.
      params: the best trial's parameters.
      trials: every trial, in grid order.
    """
    name: str
    metric: str
    params: dict
    trials: List[Trial]


def grid_points(grid: Mapping[str, Sequence]) -> List[dict]:
    """Every combination of the grid's values (one empty point for no grid)."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*grid.values())]


def masked_metrics(scores: np.ndarray, rows: EvalRows) -> Dict[str, float]:
    """Full-ranking metrics of ``scores`` on ``rows``, already-seen items masked."""
    return ranking_metrics(exclude(np.array(scores, np.float64), rows.seen), rows.targets)


def _baseline(name: str) -> Baseline:
    if name not in REGISTRY:
        raise UserError(f"unknown baseline {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def _text_args(baseline: Baseline, name: str, item_text) -> dict:
    if not baseline.needs_text:
        return {}
    if item_text is None:
        raise ValueError(f"baseline {name!r} needs item_text (item id → text embedding)")
    return {"item_text": item_text}


def tune(name: str, valid_rows: EvalRows, item_text=None,
         grid: Optional[Mapping[str, Sequence]] = None, metric: str = "NDCG@10",
         seed: int = 0, log: Callable[[str], None] = lambda line: None) -> Tuning:
    """Scores every grid point of baseline ``name`` on ``valid_rows``; keeps the best.

    Trained baselines train on ``valid_rows.known`` (the training events)
    and choose their epoch on ``valid_rows`` at each grid point.

    Args:
      name: a key of :data:`REGISTRY`.
      valid_rows: validation rows (``eval_rows(split, "valid", ...)``).
      item_text: item id → text embedding, for the text baselines.
      grid: replaces the registry's grid (e.g. a smaller one in tests).
      metric: the validation metric maximised (ties: the first grid point).
      seed: of the trained baselines.
      log: called with one line per trial.

    Returns:
      The :class:`Tuning`.

    Raises:
      ValueError: for an unknown name, or text baselines without item_text.
    """
    baseline = _baseline(name)
    text_args = _text_args(baseline, name, item_text)
    trials, best = [], None
    for params in grid_points(baseline.grid if grid is None else grid):
        started = time.perf_counter()
        curve, model = [], None
        if baseline.kind:
            model = trained.fit(baseline.kind, valid_rows.known, valid_rows, seed=seed, **params)
            scores, curve = model.scores(valid_rows), model.curve
            params = {**params, "epochs": model.epoch}
        else:
            scores = baseline.score(valid_rows, **text_args, **params)
        trial = Trial(params, masked_metrics(scores, valid_rows),
                      round(time.perf_counter() - started, 2), curve)
        trials.append(trial)
        log(f"{name} {params}: {metric} {trial.metrics[metric]:.4f} ({trial.seconds} s)")
        if best is None or trial.metrics[metric] > best.metrics[metric]:
            best = trial
    return Tuning(name, metric, best.params, trials)


def tuned_scores(name: str, params: dict, test_rows: EvalRows, item_text=None,
                 seed: int = 0) -> np.ndarray:
    """[N, C] scores of baseline ``name`` with ``params`` on ``test_rows``.

    Every baseline fits on ``test_rows.known`` (the training and validation
    events), the events a refit model trains on: counting and text baselines
    count them, trained ones train on them for the epochs their validation
    run selected (``params["epochs"]``), seeded with ``seed``.

    Raises:
      ValueError: for an unknown name, or text baselines without item_text.
    """
    baseline = _baseline(name)
    if baseline.kind:
        return trained.fit(baseline.kind, test_rows.known, None, seed=seed,
                           **params).scores(test_rows)
    return baseline.score(test_rows, **_text_args(baseline, name, item_text), **params)


def cold_items_validation(split: Split, max_history: int, fraction: float = 0.15,
                          seed: int = 0, candidates: str = "held-out") -> EvalRows:
    """Validation rows for a cold-items split: a further sample of warm items held out.

    Cold-items splits have no validation events, so a random ``fraction`` of
    the items of ``split.train`` is held out with all their events (events
    keep the split's order); each user's events with them are the targets.

    Args:
      split: a cold-items split.
      max_history: history length of the rows.
      fraction: share of the training items held out.
      seed: the item sample.
      candidates: "held-out" (rank among the held-out items) or "catalogue"
        (among every item of the split, warm and cold).

    Raises:
      ValueError: for another ``candidates``.
    """
    if candidates not in ("held-out", "catalogue"):
        raise ValueError(f"candidates must be 'held-out' or 'catalogue', not {candidates!r}")
    items = np.array(sorted(split.train["item_id"].unique()), dtype=object)
    held = set(np.random.default_rng(seed).choice(
        items, size=int(round(fraction * len(items))), replace=False))
    is_held = split.train["item_id"].isin(held)
    known = split.train[~is_held]
    valid = split.train[is_held & split.train["user_id"].isin(known["user_id"])]
    ranked = sorted(held) if candidates == "held-out" else sorted(
        set(items) | set(split.candidates))
    inner = Split("cold-items", known.reset_index(drop=True), valid.reset_index(drop=True),
                  known.iloc[:0], ranked)
    return eval_rows(inner, "valid", max_history)


# What each protocol is compared with: cold items have no interactions, so
# only text (and chance) can rank them.
PROTOCOL_BASELINES = {
    "cold-items": ("content_knn", "text_popularity", "random"),
}
INTERACTION_BASELINES = ("mostpop", "ease", "markov", "cooc_knn", "tfrs_id", "tfrs_gru")


def baselines_for(protocol: str) -> Sequence[str]:
    """The registry names a protocol's baselines are."""
    return PROTOCOL_BASELINES.get(protocol, INTERACTION_BASELINES)


def validation_rows(split: Split, max_history: int, candidates: str = "held-out") -> EvalRows:
    """The rows baselines are tuned on, for any protocol.

    The split's validation events where it has them (loo, temporal);
    cold-items: :func:`cold_items_validation`; cold-users (no validation
    events): each training user's last training event, the others known.

    Args:
      candidates: cold-items only (see :func:`cold_items_validation`).
    """
    if split.protocol == "cold-items":
        return cold_items_validation(split, max_history, candidates=candidates)
    if len(split.valid):
        return eval_rows(split, "valid", max_history)
    inner = leave_one_out(split.train, item_ids=split.candidates, seed=split.seed or 0)
    return eval_rows(inner, "test", max_history)
