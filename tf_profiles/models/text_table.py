"""The frozen text embeddings a tower stores per id (row 0: unknown ids)."""
import tensorflow as tf


def fill_text_table(table: tf.Variable, embeddings, what: str):
    """Assigns ``embeddings`` [N, E] to rows 1..N of ``table`` [N + 1, E]; row 0 stays zero.

    Raises:
      ValueError: the shape does not match the tower's vocabulary and text size.
    """
    embeddings = tf.convert_to_tensor(embeddings, tf.float32)
    expected = (table.shape[0] - 1, table.shape[1])
    if tuple(embeddings.shape) != expected:
        raise ValueError(f"{what} text embeddings have shape {tuple(embeddings.shape)}, "
                         f"expected {expected} ({what}s × text_dim)")
    table.assign(tf.concat([tf.zeros((1, expected[1])), embeddings], axis=0))


def stored_or_given_text(table: tf.Variable, index, given=None):
    """Each row's stored text embedding, replaced where ``given`` has a non-zero row."""
    text = tf.gather(table, index)
    if given is None:
        return text
    is_given = tf.reduce_any(tf.not_equal(given, 0.0), axis=-1, keepdims=True)
    return tf.where(is_given, tf.cast(given, text.dtype), text)
