import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tf_profiles.bundle.inference import item_embeddings
from tf_profiles.export import catalogue
from tf_profiles.export.versions import consumed_items, export_model
from tf_profiles.text.cache import embed_texts
from tf_profiles.text.encoder import TextEncoder
from tf_profiles.bundle.model_dir import ModelDir

from tests.conftest import read_json

WORDS = ["star", "wars", "action", "comedy", "drama", "a", "man", "is", "eating", "food",
         "bread", "piece", "of", "1977", "我", "爱", "北", "京"]
ROOT = Path(__file__).resolve().parents[2]
STREAM_ROWS = catalogue.stream_rows  # the real one; tests wrap it


def _texts(count, seed=0):
    # Varied lengths (so length-sorted batches pad differently), a duplicate and "".
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, rng.integers(1, 12))) for _ in range(count)]
    texts[3], texts[7] = "", texts[5]
    return texts


@pytest.fixture(scope="module")
def encoder(tiny_bert):
    return TextEncoder.from_checkpoint(tiny_bert, max_length=16)


@pytest.fixture(scope="module")
def model_and_catalogue(trained_model):
    folder = ModelDir(trained_model)
    return folder.load_model(), folder.catalogue()


class Interrupted(Exception):
    pass


def _chunks_computed(monkeypatch, fail_at=None):
    """Records the first row of every chunk computed; raises when chunk ``fail_at`` starts."""
    starts = []

    def recording(path, rows, width, compute, *args, **kwargs):
        def compute_and_record(start, stop):
            if len(starts) == fail_at:
                raise Interrupted(f"simulated interruption at row {start}")
            starts.append(start)
            return compute(start, stop)
        return STREAM_ROWS(path, rows, width, compute_and_record, *args, **kwargs)

    monkeypatch.setattr(catalogue, "stream_rows", recording)
    return starts


def test_text_stream_equals_embed_texts(encoder, tiny_bert, cache_dir, tmp_path):
    texts = _texts(50)
    streamed = catalogue.stream_text_embeddings(texts, encoder, tmp_path / "text.npy",
                                                chunk_size=16, batch_size=4)
    assert isinstance(streamed, np.memmap) and streamed.shape == (50, 8)
    expected = embed_texts(texts, encoder, cache_dir)
    np.testing.assert_allclose(streamed, expected, atol=1e-5)
    assert not streamed[3].any()
    record = read_json(catalogue.progress_path(tmp_path / "text.npy"))
    assert record["done"] == record["rows"] == 50


def test_item_stream_equals_candidate_embeddings(model_and_catalogue, tmp_path):
    model, known = model_and_catalogue
    ids = known.items["item_id"].tolist() + ["new-1", "new-2"]
    text = np.concatenate([known.item_text_embeddings,
                           np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)])
    streamed = catalogue.stream_item_embeddings(model, ids, text, tmp_path / "items.npy",
                                                chunk_size=4)
    whole = model.with_preprocessor(model.preprocessor.with_state(ids, text))
    np.testing.assert_allclose(streamed, item_embeddings(whole, ids), atol=1e-6)


def test_item_stream_resumes_from_the_last_chunk_with_identical_output(
        model_and_catalogue, tmp_path, monkeypatch):
    model, known = model_and_catalogue
    ids, text = known.items["item_id"].tolist(), known.item_text_embeddings
    whole = np.array(catalogue.stream_item_embeddings(model, ids, text, tmp_path / "whole.npy",
                                                      chunk_size=4))
    _chunks_computed(monkeypatch, fail_at=2)
    with pytest.raises(Interrupted):
        catalogue.stream_item_embeddings(model, ids, text, tmp_path / "items.npy", chunk_size=4)
    starts = _chunks_computed(monkeypatch)
    resumed = catalogue.stream_item_embeddings(model, ids, text, tmp_path / "items.npy",
                                               chunk_size=4)
    assert starts == list(range(8, len(ids), 4))
    np.testing.assert_array_equal(resumed, whole)
    # A finished file is returned as it is.
    starts.clear()
    catalogue.stream_item_embeddings(model, ids, text, tmp_path / "items.npy", chunk_size=4)
    assert starts == []


_KILLED_CHILD = """
import json, os, signal, sys
import tf_profiles
from tf_profiles.export import catalogue
from tf_profiles.text.encoder import TextEncoder

texts, checkpoint, path = json.loads(sys.argv[1])
write = catalogue._write_progress

def write_or_die(record_path, record):
    # The 4th chunk's rows are in the file; the process dies before recording them.
    if record["done"] == 4 * record["chunk_size"]:
        os.kill(os.getpid(), signal.SIGKILL)
    write(record_path, record)

catalogue._write_progress = write_or_die
encoder = TextEncoder.from_checkpoint(checkpoint, max_length=16)
catalogue.stream_text_embeddings(texts, encoder, path, chunk_size=10, batch_size=4)
"""


def test_text_stream_killed_mid_run_resumes_with_identical_output(encoder, tiny_bert, tmp_path,
                                                                  monkeypatch):
    texts = _texts(75, seed=1)
    whole = np.array(catalogue.stream_text_embeddings(texts, encoder, tmp_path / "whole.npy",
                                                      chunk_size=10, batch_size=4))
    path = tmp_path / "text.npy"
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, json.dumps([texts, str(tiny_bert), str(path)])],
        cwd=ROOT, capture_output=True, text=True)
    assert child.returncode == -9, child.stderr[-2000:]
    assert read_json(catalogue.progress_path(path))["done"] == 30
    starts = _chunks_computed(monkeypatch)
    resumed = catalogue.stream_text_embeddings(texts, encoder, path, chunk_size=10,
                                               batch_size=4)
    assert starts == list(range(30, 75, 10))
    np.testing.assert_array_equal(resumed, whole)


def test_progress_of_other_inputs_is_refused(encoder, tmp_path, monkeypatch):
    _chunks_computed(monkeypatch, fail_at=1)
    with pytest.raises(Interrupted):
        catalogue.stream_text_embeddings(_texts(30), encoder, tmp_path / "text.npy",
                                         chunk_size=10)
    with pytest.raises(ValueError, match="text.npy.progress.json: progress of another"):
        catalogue.stream_text_embeddings(_texts(30, seed=2), encoder, tmp_path / "text.npy",
                                         chunk_size=10)


def test_export_serves_a_streamed_catalogue(trained_model, model_and_catalogue, encoder,
                                            tmp_path):
    model, known = model_and_catalogue
    new_texts = _texts(40, seed=3)
    new_texts[3] = "drama"
    ids = known.items["item_id"].tolist() + [f"new-{i}" for i in range(40)]
    new = catalogue.stream_text_embeddings(new_texts, encoder, tmp_path / "new.npy",
                                           chunk_size=16)
    every_text = np.concatenate([known.item_text_embeddings, new])
    text = catalogue.stream_rows(tmp_path / "text.npy", len(ids), 8,
                                 lambda start, stop: every_text[start:stop], key="tiny",
                                 chunk_size=16)
    items = catalogue.stream_item_embeddings(model, ids, text, tmp_path / "items.npy",
                                             chunk_size=16)
    version = export_model(trained_model, tmp_path / "tiny", k=5, log=lambda _: None,
                           served_items=(ids, text, items))
    assert read_json(version / "assets.extra/tf_profiles.json")["items"] == len(ids)
    loaded = tf.saved_model.load(str(version))
    served = loaded.signatures["item_embedding"](item_id=tf.constant(ids[-3:]),
                                                 item_text=tf.constant(["", "", ""]))
    np.testing.assert_allclose(served["embedding"].numpy(), items[-3:], atol=1e-5)
    request = dict(user_id=tf.constant(["u1", "u2"]), history=tf.constant([["i1"], [""]]),
                   user_text=tf.constant(["", ""]))
    top = loaded.signatures["serving_default"](**request)
    users = loaded.signatures["user_embedding"](**request)["embedding"].numpy()
    rows = {item: row for row, item in enumerate(ids)}
    for user, (returned, scores) in enumerate(zip(top["item_ids"].numpy(),
                                                  top["scores"].numpy())):
        candidates = items[[rows[i.decode()] for i in returned]]
        np.testing.assert_allclose(candidates @ users[user], scores, atol=1e-5)
    # u1's best items of the whole catalogue come first, its request history
    # (i1) and every item it consumed aside.
    consumed = set(consumed_items(ModelDir(trained_model)).query("user_id == 'u1'")["item_id"])
    # Compared by score: two new items can score within float round-off of
    # each other, and then either order is right.
    scores = np.asarray(items) @ users[0]
    allowed = [r for r in np.argsort(-scores) if ids[r] not in consumed | {"i1"}]
    returned = [i.decode() for i in top["item_ids"].numpy()[0]]
    assert not set(returned) & (consumed | {"i1"})
    np.testing.assert_allclose(top["scores"].numpy()[0], scores[allowed[:5]], atol=1e-5)
