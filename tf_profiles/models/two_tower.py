"""The retrieval model: user tower × item tower, scored by a dot product."""
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_profiles.features import spec
from tf_profiles.features.preprocessor import Preprocessor
from tf_profiles.models.item_tower import ItemTower
from tf_profiles.models.user_tower import UserTower


def _unit(vectors):
    # Scores and the softmax stay float32 even when the towers compute in float16.
    return tf.math.l2_normalize(tf.cast(vectors, tf.float32), -1)


def _all_replicas_candidates(context, embeddings, ids, probability):
    """Every replica's candidates, this replica's own first.

    The loss then softmaxes each query over the whole global batch, exactly as
    on one device (TFRS's Retrieval reads the positives off the diagonal and
    the extra rows as extra negatives), instead of over the replica's slice.
    Batches may be uneven (the last one), so the offset is gathered too.
    """
    sizes = context.all_gather(tf.shape(embeddings)[:1], axis=0)  # [R]
    start = tf.reduce_sum(sizes[:context.replica_id_in_sync_group])

    def gather(values):  # [b, ...] here → [B, ...], rows of this replica first
        return tf.roll(context.all_gather(values, axis=0), -start, axis=0)

    # Collective ops do not carry strings; a 64-bit fingerprint keeps the
    # accidental-hit test (equal ids) with a negligible collision chance.
    ids = gather(tf.strings.to_hash_bucket_fast(ids, tf.int64.max))
    if probability is not None:
        probability = gather(probability)
    # all_gather has a gradient: each replica's candidate embeddings receive
    # the gradients of every replica's queries.
    return gather(embeddings), ids, probability


NEGATIVES = ("in-batch", "catalogue")


@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class TwoTowerModel(tfrs.Model):
    """TFRS two-tower retrieval: in-batch softmax with logQ correction.

    The model is its Preprocessor (raw inputs → features), the two towers
    and the TFRS Retrieval task; like a keras-hub task it carries its
    preprocessor, so ``user_embedding``/``item_embedding`` take raw ids and
    strings everywhere: in training, evaluation, profile building and the
    servable. The user tower reads the history through the item tower, so
    both towers share item representations and a new item in a history
    embeds through its text.

    Args:
      preprocessor: a :class:`Preprocessor` (its encoder trains with the
        towers when it has trainable layers: then examples carry raw
        ``item_text``/``user_text``).
      user_tower, item_tower: the towers (same ``embedding_dim``).
      temperature: softmax temperature on the (L2-normalised) scores.
      remove_accidental_hits: mask in-batch negatives equal to the positive.
      logq_strength: how much of the sampling-bias correction is applied:
        scores are lowered by ``logq_strength * log(item_probability)``. 1 is
        the full logQ correction (unbiased softmax over the catalogue), 0
        none (in-batch negatives then favour popular items, which full-
        ranking accuracy metrics partly reward). In-batch negatives only.
      negatives: "in-batch" (TFRS's sampled softmax over the batch's items,
        logQ-corrected: scales to any catalogue) or "catalogue" (a full
        softmax over every item of the preprocessor's item vocabulary at
        each step: exact, no sampling bias; affordable for catalogues of
        up to ~10^5 items). The vocabulary's items embed from their stored
        text; with a fine-tuned encoder only the positives' text goes
        through it, the negatives' stored text acting as a memory bank that
        is refreshed when training ends.

    With a causal user tower (``UserTower(causal=True)``) an example is a
    whole sequence (``spec.HISTORY`` with ``spec.NEXT_ITEMS``, the event that
    followed each slot) and the loss is the softmax over every vocabulary
    item at every position (``negatives`` must be "catalogue"): one pass
    per sequence trains as many predictions as it has events. With
    ``mask_seen`` the items a user already has (slots up to the predicting
    one) are left out of that softmax, unless one is the target: recommendations
    exclude them at evaluation and serving, so training need not spend
    capacity pushing them down.

    Call inputs: raw features (see :mod:`tf_profiles.features.examples`);
    returns ``{"user_embedding": [B, output_dim], "item_embedding": [B, output_dim]}`` (the
    latter only when ``item_id`` is given).
    """

    def __init__(self, preprocessor: Preprocessor, user_tower: UserTower,
                 item_tower: ItemTower, temperature: float = 0.1,
                 remove_accidental_hits: bool = True, logq_strength: float = 1.0,
                 negatives: str = "catalogue", mask_seen: bool = True, **kwargs):
        super().__init__(**kwargs)
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives {negatives!r}: choose one of {', '.join(NEGATIVES)}")
        if user_tower.causal and negatives != "catalogue":
            raise ValueError("a causal user tower trains against the whole catalogue at every "
                             "position: negatives must be 'catalogue'")
        if user_tower.embedding_dim != item_tower.embedding_dim:
            raise ValueError(
                f"tower sizes differ: user {user_tower.embedding_dim}, item "
                f"{item_tower.embedding_dim}; a dot product needs equal sizes")
        self.preprocessor = preprocessor
        self.user_tower = user_tower
        self.item_tower = item_tower
        self.temperature = temperature
        self.remove_accidental_hits = remove_accidental_hits
        self.logq_strength = logq_strength
        self.negatives = negatives
        self.mask_seen = bool(mask_seen)
        self.task = tfrs.tasks.Retrieval(
            temperature=temperature, remove_accidental_hits=remove_accidental_hits)
        # The softmax over scores must run in float32 under a mixed_float16
        # policy; Retrieval does not forward a dtype argument to Keras.
        self.task._set_dtype_policy("float32")
        self.loss_per_example = tf.keras.metrics.Mean(name="loss")
        # train_step returns the metric's result, already summed over the
        # replicas; Keras's default ("sum") would add the replicas' copies.
        self.distribute_reduction_method = "first"

    def with_preprocessor(self, preprocessor: Preprocessor) -> "TwoTowerModel":
        """The same towers (shared, not copied) behind another preprocessor,
        e.g. one holding a profile store's catalogue and users."""
        return type(self)(preprocessor, self.user_tower, self.item_tower, self.temperature,
                          self.remove_accidental_hits, self.logq_strength, self.negatives,
                          self.mask_seen, name=self.name)

    # === Embeddings ===

    @property
    def output_dim(self) -> int:
        """The width of the scored vectors: D, or D + 1 with an item bias."""
        return self.item_tower.embedding_dim + int(self.item_tower.use_bias)

    def _scored_items(self, tower_output):
        # [..., D] unit vector, then the bias as it is: score = cos + bias.
        if not self.item_tower.use_bias:
            return _unit(tower_output)
        return tf.concat([_unit(tower_output[..., :-1]),
                          tf.cast(tower_output[..., -1:], tf.float32)], axis=-1)

    def _history_items(self, tower_output):
        # What the user tower reads of an item: its unit vector, not its bias.
        return _unit(tower_output[..., :self.item_tower.embedding_dim])

    def _scored_users(self, tower_output):
        # [u, 1]: the constant that multiplies the items' bias.
        user = _unit(tower_output)
        if not self.item_tower.use_bias:
            return user
        return tf.concat([user, tf.ones_like(user[..., :1])], axis=-1)

    def item_embedding(self, inputs, training=False):
        """Raw items (``item_id``, optional ``item_text``) → [B, output_dim]: unit
        vectors (and the bias)."""
        features = self.preprocessor.item_features(
            inputs[spec.ITEM_ID], inputs.get(spec.ITEM_TEXT), training)
        return self._scored_items(self.item_tower(features, training=training))

    def user_embedding(self, inputs, training=False):
        """Raw users (``user_id``, ``history``, optional ``history_rating`` and
        ``user_text``) → [B, output_dim]: unit vectors (and a 1)."""
        return self.embed_user_features(self.preprocessor.user_features(
            inputs[spec.USER_ID], inputs[spec.HISTORY], inputs.get(spec.HISTORY_RATING),
            inputs.get(spec.USER_TEXT), training), training)

    def embed_user_features(self, features, training=False):
        """[B, output_dim] from :meth:`Preprocessor.user_features` (for callers that
        also need the resolved history, e.g. to exclude it from recommendations)."""
        history = self._history_items(self.item_tower({
            spec.ITEM_INDEX: features[spec.HISTORY_INDEX],
            spec.ITEM_TEXT_EMBEDDING: features[spec.HISTORY_TEXT_EMBEDDING]},
            training=training))  # [B, H, D]
        return self._embed_users(features, history, training)

    def _embed_users(self, features, history, training):
        return self._scored_users(self.user_tower({**features, spec.HISTORY_EMBEDDINGS: history},
                                                  training=training))

    def call(self, inputs, training=False):
        outputs = {"user_embedding": self.user_embedding(inputs, training)}
        if spec.ITEM_ID in inputs:
            outputs["item_embedding"] = self.item_embedding(inputs, training)
        return outputs

    # === Training ===

    @property
    def metrics(self):
        # Listed here so that Keras resets it at each epoch.
        return [self.loss_per_example]

    def train_step(self, inputs):
        # Replaces tfrs.Model.train_step for two reasons: it reports the last
        # batch's summed loss (a noisy, batch-size-dependent curve), and it
        # does not scale the loss, without which float16 gradients underflow
        # (Keras wraps the optimizer in a LossScaleOptimizer under a
        # mixed_float16 policy).
        scaling = isinstance(self.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            # Regularisation is the same on every replica; the optimizer's
            # sum over replicas must count it once.
            replicas = self.distribute_strategy.num_replicas_in_sync
            total_loss = loss + (tf.add_n(self.losses) / replicas if self.losses else 0.0)
            if scaling:
                total_loss = self.optimizer.get_scaled_loss(total_loss)
        gradients = tape.gradient(total_loss, self.trainable_variables)
        if scaling:
            gradients = self.optimizer.get_unscaled_gradients(gradients)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        # Per predicted event, so that both recipes' curves read alike.
        if spec.NEXT_ITEMS in inputs:
            targets = tf.reduce_sum(tf.cast(
                tf.not_equal(inputs[spec.NEXT_ITEMS], spec.PADDING_ID), tf.float32))
        else:
            targets = tf.cast(tf.shape(inputs[spec.ITEM_ID])[0], tf.float32)
        # A replica can get an empty slice of the last batch: 0 / 0 must add 0.
        self.loss_per_example.update_state(tf.math.divide_no_nan(loss, targets),
                                           sample_weight=targets)
        return {"loss": self.loss_per_example.result()}

    def compute_loss(self, features, training=False):
        if self.user_tower.causal:
            return self._every_position_loss(features, training)
        if self.negatives == "catalogue":
            return self._catalogue_softmax_loss(features, training)
        user = self.user_embedding(features, training)
        item = self.item_embedding(features, training)
        probability = features.get(spec.ITEM_PROBABILITY)
        if probability is not None:
            # TFRS subtracts log(p); p ** s makes that s * log(p).
            probability = tf.pow(probability, self.logq_strength)
        ids = features[spec.ITEM_ID]
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            item, ids, probability = _all_replicas_candidates(context, item, ids, probability)
        # The loss is summed over this replica's queries; the optimizer sums
        # the replicas' gradients, so the step is the one-device step on the
        # global batch.
        return self.task(
            user, item, candidate_sampling_probability=probability,
            candidate_ids=ids, compute_metrics=False)

    def _catalogue_softmax_loss(self, features, training):
        """Summed softmax cross-entropy of each positive against every vocabulary item.

        TFRS's Retrieval task reads positives off the diagonal of a batch ×
        batch score matrix, so it cannot score a batch against the whole
        catalogue; this is its loss with the catalogue as the candidates.
        The positive is its own column (it may lie outside the vocabulary,
        e.g. a new item in fine-tuning), and its copy among the vocabulary
        columns is masked, as TFRS masks accidental hits.
        """
        vocabulary = self.preprocessor.item_vocabulary_ids()  # [N]
        catalogue = self.item_embedding({spec.ITEM_ID: vocabulary}, training)  # [N, D]
        user_features = self.preprocessor.user_features(
            features[spec.USER_ID], features[spec.HISTORY], features.get(spec.HISTORY_RATING),
            features.get(spec.USER_TEXT), training)
        user = self._embed_users(
            user_features, self._history_from_catalogue(user_features, catalogue, training),
            training)
        item_features = self.preprocessor.item_features(
            features[spec.ITEM_ID], features.get(spec.ITEM_TEXT), training)
        positive = self._scored_items(self.item_tower(item_features, training=training))
        columns = tf.range(1, tf.shape(vocabulary, out_type=tf.int64)[0] + 1)
        is_positive = tf.equal(item_features[spec.ITEM_INDEX][:, tf.newaxis],
                               columns[tf.newaxis, :])  # [B, N]
        scores = tf.concat([
            tf.reduce_sum(user * positive, axis=-1, keepdims=True),
            tf.where(is_positive, tf.float32.min, tf.matmul(user, catalogue, transpose_b=True)),
        ], axis=1) / self.temperature  # [B, 1 + N]: the positive is column 0
        labels = tf.zeros(tf.shape(scores)[:1], tf.int32)
        return tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=scores))

    def _every_position_loss(self, features, training):
        """Summed softmax cross-entropy over the vocabulary of each next event.

        ``features``: ``spec.USER_ID`` [B], ``spec.HISTORY`` and
        ``spec.HISTORY_RATING`` [B, H] (right-aligned, as
        :func:`~tf_profiles.features.examples.sequence_examples` makes them)
        and ``spec.NEXT_ITEMS`` [B, H], the event after each slot ("" where
        none is trained). A target outside the vocabulary is skipped: it has
        no column to be scored in.
        """
        vocabulary = self.preprocessor.item_vocabulary_ids()  # [N]
        catalogue = self.item_embedding({spec.ITEM_ID: vocabulary}, training)  # [N, D]
        user_features = self.preprocessor.user_features(
            features[spec.USER_ID], features[spec.HISTORY], features.get(spec.HISTORY_RATING),
            features.get(spec.USER_TEXT), training)
        history = self._history_from_catalogue(user_features, catalogue, training)
        states = self._scored_users(self.user_tower.every_position(
            {**user_features, spec.HISTORY_EMBEDDINGS: history}, training=training))  # [B, H, D]
        target = self.preprocessor.item_index.lookup(features[spec.NEXT_ITEMS])  # [B, H]
        trained = tf.where(target > 0)  # [T, 2]
        scores = tf.matmul(tf.gather_nd(states, trained), catalogue,
                           transpose_b=True) / self.temperature  # [T, N]
        labels = tf.cast(tf.gather_nd(target, trained) - 1, tf.int32)
        if self.mask_seen:
            # Column i + 1 of a one-hot is vocabulary item i; index 0 (padding,
            # unknown items) falls off the front. A running max over the slots
            # marks what each slot's user has seen up to there.
            seen = tf.one_hot(user_features[spec.HISTORY_INDEX] - 1,
                              tf.shape(vocabulary)[0], on_value=True, off_value=False,
                              dtype=tf.bool)  # [B, H, N]
            seen = tf.cast(tf.cumsum(tf.cast(seen, tf.float32), axis=1) > 0, tf.bool)
            seen = tf.gather_nd(seen, trained) & tf.logical_not(
                tf.one_hot(labels, tf.shape(vocabulary)[0], on_value=True, off_value=False,
                           dtype=tf.bool))  # [T, N]
            scores = tf.where(seen, tf.float32.min, scores)
        return tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=scores))

    def _history_from_catalogue(self, features, catalogue, training):
        """[B, H, D] history embeddings, vocabulary items read from ``catalogue``.

        The same vectors ``embed_user_features`` computes (an item's
        embedding depends on its index and text only), but the item tower
        runs once per vocabulary item instead of once per history slot
        (B × H ≫ N on small catalogues). Padding reads a zero row; items
        outside the vocabulary (index 0) still go through the item tower.
        """
        index = features[spec.HISTORY_INDEX]  # [B, H]
        catalogue = catalogue[:, :self.item_tower.embedding_dim]  # without the bias
        table = tf.concat([tf.zeros_like(catalogue[:1]), catalogue], axis=0)  # [1 + N, D]
        history = tf.gather(table, index)
        unknown = tf.where(features[spec.HISTORY_MASK] & tf.equal(index, 0))  # [U, 2]
        unknown_history = self._history_items(self.item_tower({
            spec.ITEM_INDEX: tf.gather_nd(index, unknown),
            spec.ITEM_TEXT_EMBEDDING: tf.gather_nd(features[spec.HISTORY_TEXT_EMBEDDING],
                                                   unknown)}, training=training))
        return tf.tensor_scatter_nd_update(history, unknown, unknown_history)

    # === Config ===

    # See ItemTower.get_build_config.
    def get_build_config(self):
        return {"built": True}

    def build_from_config(self, config):
        self({spec.USER_ID: tf.constant([spec.PADDING_ID]),
              spec.HISTORY: tf.constant([[spec.PADDING_ID]]),
              spec.HISTORY_RATING: tf.zeros((1, 1)),
              spec.ITEM_ID: tf.constant([spec.PADDING_ID])})

    def get_config(self):
        serialize = tf.keras.utils.serialize_keras_object
        return {
            "preprocessor": serialize(self.preprocessor),
            "user_tower": serialize(self.user_tower),
            "item_tower": serialize(self.item_tower),
            "temperature": self.temperature,
            "remove_accidental_hits": self.remove_accidental_hits,
            "logq_strength": self.logq_strength,
            "negatives": self.negatives,
            "mask_seen": self.mask_seen,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("preprocessor", "user_tower", "item_tower"):
            config[key] = tf.keras.utils.deserialize_keras_object(config[key])
        return cls(**config)
