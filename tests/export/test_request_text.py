"""A request's user_text at serving: "" keeps the stored text, any other text steers."""
import numpy as np
import pytest
import tensorflow as tf

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.export.versions import export_model

from tests.conftest import train_tiny
from tests.harness import check_servable


@pytest.fixture(scope="module")
def intent_model(tiny_bert, tmp_path_factory):
    """(model folder, loaded export, k=5) of a tiny model trained with queries."""
    root = tmp_path_factory.mktemp("intent")
    folder = train_tiny(root, tiny_bert, recipe="per-event", query_fraction=0.5)
    version = export_model(folder, root / "saved" / "tiny", k=5, log=lambda _: None)
    return folder, tf.saved_model.load(str(version))


def _recommend(loaded, users, history, texts):
    out = loaded.signatures["serving_default"](
        user_id=tf.constant(users), history=tf.constant(history), user_text=tf.constant(texts))
    return out["item_ids"].numpy(), out["scores"].numpy()


def test_empty_user_text_keeps_the_stored_text(intent_model):
    folder, loaded = intent_model
    users = ["u1", "u2"]
    text = ModelDir(folder).catalogue().users.set_index("user_id").loc[users, "text"].tolist()
    assert all(text)
    for history in ([[""], [""]], [["i1", "i2"], ["i3", ""]]):
        ids, scores = _recommend(loaded, users, history, ["", ""])
        explicit_ids, explicit_scores = _recommend(loaded, users, history, text)
        np.testing.assert_array_equal(ids, explicit_ids)
        np.testing.assert_allclose(scores, explicit_scores, atol=1e-5)


@pytest.mark.parametrize("query", ["comedy", "star wars action", "我爱北京电影"])
def test_a_query_changes_the_recommendations_and_ranks_by_the_dot_product(intent_model,
                                                                          query):
    folder, loaded = intent_model
    users, history = ["u1", "u2"], [["i1", "i2"], ["i3", ""]]
    _, stored = _recommend(loaded, users, history, ["", ""])
    ids, steered = _recommend(loaded, users, history, [query, query])
    assert ids.shape == (2, 5) and np.isfinite(steered).all()
    assert not np.allclose(stored, steered, atol=1e-4)
    # Users new to the export: the trained Keras model answers the same.
    check_servable(loaded, ModelDir(folder).load_model(), [
        {"user_id": ["new-1", "new-2"], "history": history, "user_text": [query, ""]}], [])
