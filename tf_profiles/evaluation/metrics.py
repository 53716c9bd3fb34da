"""Full-ranking metrics (every candidate is scored, excluded items -inf) and
the paired test that compares two methods user by user."""
from typing import Dict, Sequence, Tuple

import numpy as np
import scipy.stats

CUTOFFS = (10, 50, 100)


def per_row_metrics(scores: np.ndarray, targets: Sequence[np.ndarray],
                    cutoffs=CUTOFFS) -> Dict[str, np.ndarray]:
    """HR@k, Recall@k, NDCG@k and MRR of every row (e.g. per user, for a paired test).

    Args:
      scores: [N, C] scores of every candidate (higher is better; -inf masks).
      targets: per row, the column indices of the relevant candidates (≥ 1).

    Returns:
      {"HR@10": [N], "Recall@10": [N], "NDCG@10": [N], ..., "MRR": [N]}.
      Ties are broken against the target (a target ranks below every
      candidate with an equal score), so a constant scorer earns nothing.

    Raises:
      ValueError: if ``scores`` and ``targets`` have different row counts.
    """
    if scores.shape[0] != len(targets):
        raise ValueError(f"{scores.shape[0]} score rows but {len(targets)} target rows")
    max_k = max(cutoffs)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, max_k + 2)))
    values = {name: np.zeros(len(targets))
              for k in cutoffs for name in (f"HR@{k}", f"Recall@{k}", f"NDCG@{k}")}
    values["MRR"] = np.zeros(len(targets))
    for row, relevant in enumerate(targets):
        relevant = np.asarray(relevant)
        target_scores = scores[row, relevant]
        # 1-based rank: the number of candidates scoring at least as high,
        # the target included.
        ranks = np.sort((scores[row][None, :] >= target_scores[:, None]).sum(axis=1))
        values["MRR"][row] = 1.0 / ranks[0]
        for k in cutoffs:
            hits = ranks[ranks <= k]
            values[f"HR@{k}"][row] = float(len(hits) > 0)
            values[f"Recall@{k}"][row] = len(hits) / len(relevant)
            values[f"NDCG@{k}"][row] = (np.sum(1.0 / np.log2(hits + 1))
                                        / ideal[min(len(relevant), k) - 1])
    return values


def ranking_metrics(scores: np.ndarray, targets: Sequence[np.ndarray],
                    cutoffs=CUTOFFS) -> Dict[str, float]:
    """The mean over rows of :func:`per_row_metrics` (same arguments).

    Returns:
      {"HR@10": ..., "Recall@10": ..., "NDCG@10": ..., ..., "MRR": ...}
      (0 for every metric when there are no rows).
    """
    return {name: float(row_values.mean()) if len(row_values) else 0.0
            for name, row_values in per_row_metrics(scores, targets, cutoffs).items()}


def wilcoxon_signed_rank(first: np.ndarray, second: np.ndarray) -> Tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired values (e.g. per-user NDCG@10).

    scipy's test, with pairs of equal values dropped (Wilcoxon's convention:
    with per-user metrics most users often score 0 under both methods) and
    the normal approximation, accurate for the hundreds of users a benchmark
    compares.

    Args:
      first, second: [N] paired values.

    Returns:
      (W, p): the smaller of the positive and negative rank sums, and the
      two-sided p-value (1.0 when every pair is equal: nothing to test).

    Raises:
      ValueError: if the arrays differ in length.
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape:
        raise ValueError(f"paired values differ in shape: {first.shape} and {second.shape}")
    if np.array_equal(first, second):
        return 0.0, 1.0
    result = scipy.stats.wilcoxon(first, second, zero_method="wilcox", method="approx")
    return float(result.statistic), float(result.pvalue)
