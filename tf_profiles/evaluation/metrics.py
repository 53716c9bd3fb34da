"""Full-ranking metrics: every candidate is scored (excluded items scored -inf)."""
from typing import Dict, Sequence

import numpy as np

CUTOFFS = (10, 50, 100)


def ranking_metrics(scores: np.ndarray, targets: Sequence[np.ndarray],
                    cutoffs=CUTOFFS) -> Dict[str, float]:
    """HR@k, Recall@k, NDCG@k and MRR, averaged over rows.

    Args:
      scores: [N, C] scores of every candidate (higher is better; -inf masks).
      targets: per row, the column indices of the relevant candidates (≥ 1).

    Returns:
      {"HR@10": ..., "Recall@10": ..., "NDCG@10": ..., ..., "MRR": ...}.
      Ties are broken against the target (a target ranks below every
      candidate with an equal score), so a constant scorer earns nothing.
    """
    if scores.shape[0] != len(targets):
        raise ValueError(f"{scores.shape[0]} score rows but {len(targets)} target rows")
    max_k = max(cutoffs)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, max_k + 2)))
    totals = {name: 0.0 for k in cutoffs for name in (f"HR@{k}", f"Recall@{k}", f"NDCG@{k}")}
    totals["MRR"] = 0.0
    for row, relevant in enumerate(targets):
        relevant = np.asarray(relevant)
        target_scores = scores[row, relevant]
        # 1-based rank: the number of candidates scoring at least as high,
        # the target included.
        ranks = np.sort((scores[row][None, :] >= target_scores[:, None]).sum(axis=1))
        totals["MRR"] += 1.0 / ranks[0]
        for k in cutoffs:
            hits = ranks[ranks <= k]
            totals[f"HR@{k}"] += float(len(hits) > 0)
            totals[f"Recall@{k}"] += len(hits) / len(relevant)
            dcg = np.sum(1.0 / np.log2(hits + 1))
            totals[f"NDCG@{k}"] += dcg / ideal[min(len(relevant), k) - 1]
    count = max(len(targets), 1)
    return {name: value / count for name, value in totals.items()}
