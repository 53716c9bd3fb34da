"""With a fine-tuned encoder, what is served is what was trained (no train/serve skew)."""
import pandas as pd
import pytest
import tensorflow as tf

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.export.versions import export_model

from tests.conftest import train_tiny
from tests.harness import assert_same_outputs, check_servable


@pytest.fixture(scope="module")
def finetuned(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetuned")
    model_dir = train_tiny(root, tiny_bert, epochs=1, encoder_mode="finetune",
                           trainable_layers=2)
    version = export_model(model_dir, root / "saved" / "tiny", k=5, log=lambda _: None,
                           cache_dir=root / "cache")
    folder = ModelDir(model_dir)
    return folder, folder.load_model(), tf.saved_model.load(str(version))


def _oldest(folder, user, count=2):
    # Items outside the user's stored latest history: no stored rating, so
    # the servable and the trained model read the same history features.
    split = folder.split()
    events = pd.concat([split.train, split.valid, split.test]).sort_values("timestamp")
    return events[events["user_id"] == user]["item_id"].tolist()[:count]


def test_served_embeddings_equal_the_trained_model(finetuned):
    folder, model, loaded = finetuned
    history = [_oldest(folder, "u1"), _oldest(folder, "u2"), ["i3", "i4"]]
    users = {"user_id": ["u1", "u2", "new-user"], "history": history}
    check_servable(loaded, model, [
        {**users, "user_text": ["", "", ""]},  # stored text; none for the new user
        {**users, "user_text": ["likes drama", "", "star wars action"]},
    ], [
        {"item_id": ["i1", "i2", "new-item"], "item_text": ["", "", ""]},
        {"item_id": ["i1", "new-item", "new-item"], "item_text": ["", "comedy", "drama"]},
    ])


def test_stored_text_is_what_the_trained_encoder_computes(finetuned):
    folder, model, _ = finetuned
    catalogue = folder.catalogue()
    items = catalogue.items["item_id"].tolist()[:4]
    texts = catalogue.items["text"].tolist()[:4]
    assert_same_outputs(model.item_embedding({"item_id": tf.constant(items)}),
                        model.item_embedding({"item_id": tf.constant(items),
                                              "item_text": tf.constant(texts)}), atol=1e-5)
    users = catalogue.users["user_id"].tolist()[:3]
    request = {"user_id": tf.constant(users), "history": tf.constant([["i1"]] * 3)}
    assert_same_outputs(
        model.user_embedding(request),
        model.user_embedding({**request, "user_text": tf.constant(
            catalogue.users["text"].tolist()[:3])}), atol=1e-5)


def test_stored_profile_equals_user_embedding_of_the_stored_state(finetuned):
    _, _, loaded = finetuned
    users = tf.constant(["u1", "u5"])
    stored = loaded.signatures["lookup_profiles"](user_id=users)["embedding"]
    online = loaded.signatures["user_embedding"](
        user_id=users, history=tf.constant([[""], [""]]),
        user_text=tf.constant(["", ""]))["embedding"]
    assert_same_outputs(stored, online, atol=1e-5)
