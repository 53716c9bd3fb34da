"""Scores of a trained two-tower model over the candidates of an evaluation."""
import numpy as np

from tf_profiles.bundle.inference import item_embeddings, user_embeddings
from tf_profiles.evaluation.metrics import ranking_metrics
from tf_profiles.evaluation.protocol import EvalRows
from tf_profiles.models.ranking import exclude


def model_scores(model, rows: EvalRows) -> np.ndarray:
    """[N, C] dot products: exactly the score the exported model ranks by."""
    return user_embeddings(model, rows.histories) @ item_embeddings(model, rows.candidates).T


def held_out_metrics(model, rows: EvalRows, cutoffs=(10,)) -> dict:
    """Full-ranking metrics of ``model`` on ``rows``, already-seen items excluded."""
    return ranking_metrics(exclude(model_scores(model, rows), rows.seen), rows.targets,
                           cutoffs=cutoffs)
