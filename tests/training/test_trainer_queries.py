"""Training with request-time intent: a share of examples carry a pseudo-query."""
import numpy as np
import tensorflow as tf

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.features import spec
from tf_profiles.features.preprocessor import Preprocessor
from tf_profiles.training import trainer

from tests.conftest import read_json, train_tiny


def test_a_tiny_run_with_queries_trains_on_them(tiny_bert, tmp_path, monkeypatch):
    seen = {}
    pipeline = trainer.input_pipeline

    def spy(examples, batch_size, seed):
        seen.update(examples)
        return pipeline(examples, batch_size, seed)

    monkeypatch.setattr(trainer, "input_pipeline", spy)
    known = []
    remember = Preprocessor.known_texts

    def spy_known(self, texts, vectors):
        known.append(list(texts))
        return remember(self, texts, vectors)

    monkeypatch.setattr(Preprocessor, "known_texts", spy_known)
    folder = ModelDir(train_tiny(tmp_path, tiny_bert, recipe="per-event", query_fraction=0.5))
    texts = seen[spec.USER_TEXT]
    assert 0.3 < (texts != "").mean() < 0.7
    # The queries were embedded once before fit, not in every step.
    assert known == [sorted(set(texts) - {""})]
    # Each query names its target item (tiny items: "Star Wars <i> (1977)", two genres).
    items = folder.catalogue().items.set_index("item_id")
    for item, text in zip(seen[spec.ITEM_ID], texts):
        if text:
            words = items.loc[item, "tags"].lower().split("|") + [f"star wars {item[1:]}"]
            assert any(word in text for word in words), (item, text)

    metrics = read_json(folder.metrics_file)
    assert np.isfinite(metrics["history"]["loss"]).all() and metrics["selected_epochs"] >= 1
    assert read_json(folder.config_file)["query_fraction"] == 0.5
    model = folder.load_model()
    request = {spec.USER_ID: tf.constant(["u1", "u1"]),
               spec.HISTORY: tf.constant([["i1", "i2"], ["i1", "i2"]])}
    stored = model.user_embedding({**request, spec.USER_TEXT: tf.constant(["", ""])}).numpy()
    steered = model.user_embedding({**request,
                                    spec.USER_TEXT: tf.constant(["comedy", "drama"])}).numpy()
    assert not np.allclose(stored, steered, atol=1e-4)
    assert not np.allclose(steered[0], steered[1], atol=1e-4)
