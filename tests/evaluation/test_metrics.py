import numpy as np
import pytest

from tf_profiles.evaluation.metrics import per_row_metrics, ranking_metrics, wilcoxon_signed_rank
from tf_profiles.models.ranking import exclude


def test_single_target_metrics_by_hand():
    scores = np.array([[0.9, 0.5, 0.1, 0.3],    # target 1 ranks 2nd
                       [0.1, 0.2, 0.3, 0.4]])   # target 0 ranks 4th
    metrics = ranking_metrics(scores, [np.array([1]), np.array([0])], cutoffs=(1, 2, 10))
    assert metrics["HR@1"] == 0.0
    assert metrics["HR@2"] == 0.5
    assert metrics["NDCG@2"] == pytest.approx(0.5 * (1 / np.log2(3)))
    assert metrics["MRR"] == pytest.approx(0.5 * (1 / 2 + 1 / 4))


def test_multiple_targets_recall_and_ndcg():
    scores = np.array([[0.9, 0.8, 0.1, 0.7]])
    metrics = ranking_metrics(scores, [np.array([0, 2])], cutoffs=(2,))
    assert metrics["Recall@2"] == 0.5
    assert metrics["NDCG@2"] == pytest.approx(1.0 / (1 + 1 / np.log2(3)))


def test_ties_count_against_the_target():
    metrics = ranking_metrics(np.zeros((1, 5)), [np.array([2])], cutoffs=(1,))
    assert metrics["HR@1"] == 0.0 and metrics["MRR"] == pytest.approx(0.2)


def test_seen_items_are_masked():
    scores = exclude(np.array([[0.9, 0.5, 0.1]]), [np.array([0])])
    assert ranking_metrics(scores, [np.array([1])], cutoffs=(1,))["HR@1"] == 1.0


def test_row_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 score rows but 1 target rows"):
        ranking_metrics(np.zeros((2, 3)), [np.array([0])])


def test_per_row_metrics_are_what_the_means_average():
    scores = np.array([[0.9, 0.5, 0.1, 0.3], [0.1, 0.2, 0.3, 0.4]])
    targets = [np.array([1]), np.array([0])]
    rows = per_row_metrics(scores, targets, cutoffs=(2,))
    np.testing.assert_allclose(rows["NDCG@2"], [1 / np.log2(3), 0.0])
    np.testing.assert_allclose(rows["MRR"], [1 / 2, 1 / 4])
    assert ranking_metrics(scores, targets, cutoffs=(2,))["NDCG@2"] == rows["NDCG@2"].mean()


def test_wilcoxon_signed_rank_separates_a_consistent_gain_from_noise():
    rng = np.random.default_rng(0)
    base = rng.random(300)
    assert wilcoxon_signed_rank(base + 0.05, base)[1] < 1e-10
    assert wilcoxon_signed_rank(base, base) == (0.0, 1.0)
    assert wilcoxon_signed_rank(base, rng.permutation(base))[1] > 0.01
    with pytest.raises(ValueError, match="differ in shape"):
        wilcoxon_signed_rank(base, base[:5])
