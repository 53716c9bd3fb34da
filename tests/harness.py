"""The one test harness every layer, model and servable passes.

- ``check_config``: the config is JSON and exactly the constructor's arguments,
  and ``from_config(get_config())`` rebuilds the same config;
- ``check_save_load``: ``.keras`` save → ``load_model`` → the same outputs;
- ``check_servable``: an exported version answers every signature like the
  in-memory model it was exported from.
"""
import inspect
import json

import numpy as np
import tensorflow as tf


def assert_same_outputs(first, second, atol=1e-6):
    """Every tensor of two nested outputs is equal (numbers within ``atol``)."""
    def same(a, b):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, atol=atol)
        else:
            np.testing.assert_array_equal(a, b)

    tf.nest.map_structure(same, first, second)


def check_config(layer):
    config = layer.get_config()
    json.dumps(config)
    parameters = set(inspect.signature(type(layer).__init__).parameters) - {"self", "kwargs"}
    assert set(config) == parameters | {"name"}
    assert type(layer).from_config(config).get_config() == config


def check_save_load(layer, inputs, path, call=None, atol=1e-6):
    """Saves ``layer`` (a Keras model, or a layer wrapped in one) and compares
    ``call(layer, inputs)`` (default ``layer(inputs)``) before and after."""
    call = call or (lambda obj, x: obj(x))
    expected = call(layer, inputs)
    if not isinstance(layer, tf.keras.Model):
        wrapper = tf.keras.Sequential([layer])
        wrapper.save(path)
        reloaded = tf.keras.models.load_model(path).layers[0]
    else:
        layer.save(path)
        reloaded = tf.keras.models.load_model(path)
    assert type(reloaded) is type(layer)
    assert_same_outputs(expected, call(reloaded, inputs), atol=atol)
    return reloaded


def check_servable(loaded, model, user_requests, item_requests, atol=1e-5):
    """``loaded`` (a SavedModel export of ``model``) answers ``user_embedding`` and
    ``item_embedding`` exactly as ``model.user_embedding``/``item_embedding`` do,
    and ``serving_default`` ranks by their dot product."""
    for request in user_requests:
        served = loaded.signatures["user_embedding"](
            **{k: tf.constant(v) for k, v in request.items()})["embedding"].numpy()
        np.testing.assert_allclose(served, model.user_embedding(request).numpy(), atol=atol)
        top = loaded.signatures["serving_default"](
            **{k: tf.constant(v) for k, v in request.items()})
        ids = top["item_ids"].numpy()
        for row in range(len(ids)):
            items = model.item_embedding({"item_id": tf.constant(ids[row])}).numpy()
            np.testing.assert_allclose(items @ served[row], top["scores"].numpy()[row],
                                       atol=atol)
    for request in item_requests:
        served = loaded.signatures["item_embedding"](
            **{k: tf.constant(v) for k, v in request.items()})["embedding"].numpy()
        np.testing.assert_allclose(served, model.item_embedding(request).numpy(), atol=atol)
