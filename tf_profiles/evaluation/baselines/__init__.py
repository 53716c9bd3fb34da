"""Baselines scored on exactly the rows the model is scored on.

Each counting and content baseline is ``(rows: EvalRows, **params) ->
[N, C]`` scores over ``rows.candidates``, fitted on ``rows.known``; the
trained ones are fitted once (``trained.fit``) and score any rows:

- ``counting``: MostPop, EASE, first-order Markov chain, sequential item
  co-occurrence KNN, random.
- ``trained``: the two TFRS tutorial models (ID two-tower, GRU sequential);
  ``trained.fit`` also keeps the weights of the best validation epoch.
- ``content``: cold-start items from item text (content KNN, text →
  popularity regression).

``evaluation.tuning`` holds their search grids and picks their parameters
on validation.
"""
from tf_profiles.evaluation.baselines.content import content_knn, text_popularity
from tf_profiles.evaluation.baselines.counting import (
    cooccurrence_knn, ease, markov_chain, most_popular, random_scores)
