import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.features import spec
from tf_profiles.features.examples import latest_histories
from tf_profiles.features.spec import SIGNATURES
from tf_profiles.serving import warmup
from tf_profiles.compat import check as compat
from tf_profiles.compat.versions import matching_serving_version
from tf_profiles.export.configs import allowed_batch_sizes
from tf_profiles.export.versions import export_model, next_version
from tf_profiles.export.module import ServingModule

from tests.conftest import read_json
from tests.harness import check_servable


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported[1]))


@pytest.fixture(scope="module")
def model(trained_model):
    return ModelDir(trained_model).load_model()


def _user_request(users, history, texts):
    return dict(user_id=tf.constant(users), history=tf.constant(history),
                user_text=tf.constant(texts))


def test_layout_and_metadata(exported):
    base, version = exported
    assert version.name == "1"
    for name in ("saved_model.pb", "variables", "assets.extra/tf_serving_warmup_requests",
                 "assets.extra/tf_profiles.json"):
        assert (version / name).exists(), name
    metadata = read_json(version / "assets.extra/tf_profiles.json")
    # The served vectors: 8 dimensions and the item bias column ([u, 1]·[v, b]).
    assert metadata["k"] == 5 and metadata["embedding_dim"] == 9
    assert metadata["signatures"] == list(SIGNATURES)
    features = metadata["features"]
    assert features["max_history"] == 4 and features["padding_id"] == ""
    assert features["signatures"]["serving_default"]["inputs"] == ["user_id", "history",
                                                                   "user_text"]
    assert not [p for p in base.iterdir() if p.name.startswith(".staging")]


def test_signature_contract_in_saved_model_cli(exported):
    cli = Path(sys.executable).parent / "saved_model_cli"
    shown = subprocess.run([str(cli), "show", "--dir", str(exported[1]), "--all"],
                           capture_output=True, text=True, check=True).stdout
    for signature in SIGNATURES:
        assert f"signature_def['{signature}']" in shown
    for name, dtype, shape in (("inputs['user_id']", "DT_STRING", "(-1)"),
                               ("inputs['history']", "DT_STRING", "(-1, -1)"),
                               ("outputs['item_ids']", "DT_STRING", "(-1, 5)"),
                               ("outputs['found']", "DT_BOOL", "(-1)"),
                               ("outputs['interest_weights']", "DT_FLOAT", "(-1, 5)")):
        expected = f"{name} tensor_info:\n        dtype: {dtype}\n        shape: {shape}"
        assert expected in shown, expected


def test_no_device_placement_in_any_serving_function(exported):
    proto = saved_model_pb2.SavedModel.FromString((exported[1] / "saved_model.pb").read_bytes())
    functions = proto.meta_graphs[0].graph_def.library.function
    # TensorFlow pins its own checkpoint save/restore functions (and a
    # mutable table's save_fn/restore_fn) to the CPU in every SavedModel
    # (they run once, at load), and hash-table lookups, which have CPU
    # kernels only, to the table's device; everything else must be free to
    # land on a GPU.
    checkpointing = ("_traced_save", "_traced_restore", "__inference_save_fn",
                     "__inference_restore_fn")
    serving = [f for f in functions
               if not any(name in f.signature.name for name in checkpointing)]
    placed = {(f.signature.name, n.name, n.device) for f in serving for n in f.node_def
              if n.device and n.op != "LookupTableFindV2"}
    assert len(serving) > 10 and not placed


@pytest.fixture(scope="module")
def rating_of(trained_model):
    """(user, item) → the stored rating the export attaches to a request's history:
    that of the user's latest ``max_history`` events, 0 for any other item."""
    folder = ModelDir(trained_model)
    split = folder.split()
    events = pd.concat([split.train, split.valid, split.test])
    stored = latest_histories(events, sorted(set(events["user_id"])),
                              folder.config().max_history)
    table = {(user, item): rating for user, items, ratings in zip(
        stored[spec.USER_ID], stored[spec.HISTORY], stored[spec.HISTORY_RATING])
        for item, rating in zip(items, ratings) if item}
    return lambda user, item: float(table.get((user, item), 0.0))


def test_user_embedding_equals_the_keras_model(loaded, model, rating_of):
    users, history = ["u1", "u2"], [["", "i1", "i2", "i3"], ["i4", "", "", "i5"]]
    served = loaded.signatures["user_embedding"](**_user_request(
        users, history, ["", ""]))["embedding"].numpy()
    # The trained model (its Preprocessor: training catalogue, no stored
    # histories) given the stored ratings the servable attaches itself.
    expected = model.user_embedding({
        spec.USER_ID: tf.constant(users), spec.HISTORY: tf.constant(history),
        spec.HISTORY_RATING: tf.constant(
            [[rating_of(u, i) if i else 0.0 for i in row] for u, row in zip(users, history)]),
        spec.USER_TEXT: tf.constant(["", ""])}).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_the_servable_answers_like_the_trained_model(loaded, model):
    # Users and items the training data never had: no stored state differs.
    check_servable(loaded, model, [
        {"user_id": ["new-1", "new-2"], "history": [["i1", "", "i2"], ["", "", ""]],
         "user_text": ["", "likes drama"]}],
        [{"item_id": ["i1", "new"], "item_text": ["", "star wars drama"]}])


def test_item_embedding_equals_the_keras_model_and_new_items_embed_by_text(loaded, model):
    serve = loaded.signatures["item_embedding"]
    request = {spec.ITEM_ID: tf.constant(["i1", "i2", "brand-new", "brand-new"]),
               spec.ITEM_TEXT: tf.constant(["", "", "star wars drama", "comedy"])}
    served = serve(**request)["embedding"].numpy()
    np.testing.assert_allclose(served, model.item_embedding(request).numpy(), atol=1e-5)
    assert not np.allclose(served[2], served[3])  # the text decides where a new item lands


def test_recommendations_rank_by_the_dot_product_and_skip_history(loaded):
    request = _user_request(["u1", "nobody"], [["i1", "", "i2"], ["i3", "i4", ""]],
                            ["", "likes drama"])
    top = loaded.signatures["serving_default"](**request)
    ids, scores = top["item_ids"].numpy(), top["scores"].numpy()
    assert ids.shape == scores.shape == (2, 5)
    assert not {b"i1", b"i2"} & set(ids[0]) and not {b"i3", b"i4"} & set(ids[1])
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    users = loaded.signatures["user_embedding"](**request)["embedding"].numpy()
    for row in range(2):
        items = loaded.signatures["item_embedding"](
            item_id=tf.constant(ids[row]), item_text=tf.constant([""] * 5))["embedding"].numpy()
        np.testing.assert_allclose(items @ users[row], scores[row], atol=1e-5)


def test_empty_history_falls_back_to_the_stored_one(loaded):
    embed = loaded.signatures["user_embedding"]
    empty = embed(**_user_request(["u1"], [["", ""]], [""]))["embedding"].numpy()
    lookup = loaded.signatures["lookup_profiles"](user_id=tf.constant(["u1"]))
    np.testing.assert_allclose(empty, lookup["embedding"].numpy(), atol=1e-5)
    top = loaded.signatures["serving_default"](**_user_request(["u1"], [[""]], [""]))
    assert top["item_ids"].shape == (1, 5)


def test_lookup_profiles_found_and_not_found(loaded):
    out = loaded.signatures["lookup_profiles"](user_id=tf.constant(["u3", "nobody", "u3"]))
    assert out["found"].numpy().tolist() == [True, False, True]
    assert not out["embedding"].numpy()[1].any()
    assert out["profile_text"].numpy()[1] == b""
    text = out["profile_text"].numpy()[0].decode()
    assert "Interested in" in text and "Recently:" in text
    weights = out["interest_weights"].numpy()
    assert weights[0].sum() > 0 and not weights[1].any()
    assert out["interests"].numpy()[0][0] in (b"Action", b"Comedy", b"Drama")


def test_unknown_ids_never_crash(loaded):
    out = loaded.signatures["serving_default"](**_user_request(
        ["x", "y"], [["nope", "never"], ["", ""]], ["", ""]))
    assert np.isfinite(out["scores"].numpy()).all()
    emb = loaded.signatures["item_embedding"](item_id=tf.constant(["nope"]),
                                              item_text=tf.constant([""]))["embedding"]
    assert np.isfinite(emb.numpy()).all()


def test_warmup_records_cover_every_signature_and_replay(exported, loaded):
    logs = warmup.read_warmup(exported[1] / "assets.extra" / warmup.WARMUP_FILE)
    assert sorted(log.predict_log.request.model_spec.signature_name for log in logs) == sorted(
        SIGNATURES)
    for log in logs:
        request = log.predict_log.request
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        loaded.signatures[request.model_spec.signature_name](**inputs)


def test_warmup_records_hold_no_real_user(exported):
    """They travel with every copy of the export: made-up ids, catalogue items."""
    logs = warmup.read_warmup(exported[1] / "assets.extra" / warmup.WARMUP_FILE)
    users = {user for log in logs for name, proto in log.predict_log.request.inputs.items()
             if name == "user_id" for user in tf.make_ndarray(proto).ravel()}
    assert users and all(u.startswith((b"warmup-user-", b"unknown-user")) for u in users)


def test_versions_are_atomic_and_never_overwritten(trained_model, fresh_base):
    assert next_version(fresh_base) == 2
    second = export_model(trained_model, fresh_base, k=3, log=lambda _: None)
    assert second.name == "2"
    with pytest.raises(ValueError, match="exists already"):
        export_model(trained_model, fresh_base, version=2, log=lambda _: None)
    assert sorted(p.name for p in fresh_base.iterdir()) == ["1", "2", "serving"]


def test_serving_configs(exported):
    folder = exported[0] / "serving"
    batching = (folder / "batching_parameters.txt").read_text()
    assert "max_batch_size { value: 64 }" in batching
    assert batching.strip().splitlines()[-2] == "allowed_batch_sizes: 64"
    assert "pad_variable_length_inputs: true" in batching
    assert 'name: "tiny"' in (folder / "models.config").read_text()
    compose = (folder / "docker-compose.yml").read_text()
    assert "-gpu" in compose and "--enable_batching=true" in compose
    # Published on this machine only unless the operator says otherwise.
    assert '"127.0.0.1:8500:8500"' in compose and '"127.0.0.1:8501:8501"' in compose
    assert allowed_batch_sizes(256) == [8, 16, 32, 64, 128, 256]
    assert allowed_batch_sizes(100) == [8, 16, 32, 64, 100]


def test_configs_run_the_tf_serving_release_of_the_exporting_tensorflow(
        trained_model, exported, tmp_path, monkeypatch):
    major, minor = (int(part) for part in tf.__version__.split(".")[:2])
    assert matching_serving_version() == f"{major}.{minor}.0"
    for name in ("docker-compose.yml", "kubernetes.yaml"):
        text = (exported[0] / "serving" / name).read_text()
        assert f"image: tensorflow/serving:{major}.{minor}.0-gpu" in text, name
    # Another release on request; an older one only if check-serving passes.
    monkeypatch.setattr(compat, "check_serving", lambda *_, **__: ["op Foo is not registered"])
    newer, older = f"{major}.{minor + 1}.0", f"{major}.{minor - 1}.0"
    export_model(trained_model, tmp_path / "newer", k=3, serving_version=newer,
                 log=lambda _: None)
    compose = (tmp_path / "newer" / "serving" / "docker-compose.yml").read_text()
    assert f"image: tensorflow/serving:{newer}-gpu" in compose
    with pytest.raises(ValueError, match=f"TF Serving {older} cannot serve an export written "
                                         f"by TensorFlow {tf.__version__}: op Foo"):
        export_model(trained_model, tmp_path / "older", k=3, serving_version=older,
                     log=lambda _: None)
    assert not list((tmp_path / "older").iterdir())  # neither the version nor the configs
    with pytest.raises(ValueError, match=r"version '2\.19': expected X\.Y\.Z"):
        export_model(trained_model, tmp_path / "bad", serving_version="2.19", log=lambda _: None)


def test_float16_export_matches_float32(trained_model, exported, tmp_path, loaded):
    version = export_model(trained_model, tmp_path / "fp16", k=5, float16=True,
                           log=lambda _: None)
    half = tf.saved_model.load(str(version))
    request = _user_request(["u1", "u2"], [["i1", "i2"], ["", "i3"]], ["", "drama"])
    np.testing.assert_allclose(
        half.signatures["user_embedding"](**request)["embedding"].numpy(),
        loaded.signatures["user_embedding"](**request)["embedding"].numpy(), atol=2e-2)


def _consumed_by_user(trained_model):
    split = ModelDir(trained_model).split()
    events = pd.concat([split.train, split.valid, split.test])
    return events.groupby("user_id")["item_id"].agg(set)


def test_no_consumed_item_is_recommended_whatever_history_is_sent(loaded, trained_model):
    consumed = _consumed_by_user(trained_model)
    users = sorted(consumed.index)
    # Each user sends only the latest event; the other 7 stay stored.
    latest = [[sorted(consumed[u])[0]] for u in users]
    top = loaded.signatures["serving_default"](**_user_request(users, latest, [""] * len(users)))
    for user, items in zip(users, top["item_ids"].numpy()):
        assert not {i.decode() for i in items} & consumed[user], user


def test_repeats_are_allowed_without_consumed_exclusion(trained_model, tmp_path):
    version = export_model(trained_model, tmp_path / "repeats", k=5, log=lambda _: None,
                           exclude_consumed=False)
    assert not read_json(version / "assets.extra/tf_profiles.json")["exclude_consumed"]
    consumed = _consumed_by_user(trained_model)
    users = sorted(consumed.index)
    sent = [[sorted(consumed[u])[0]] for u in users]
    top = tf.saved_model.load(str(version)).signatures["serving_default"](
        **_user_request(users, sent, [""] * len(users)))["item_ids"].numpy()
    returned = [{i.decode() for i in items} for items in top]
    assert not any(row & set(history) for row, history in zip(returned, sent))
    assert any(row & consumed[user] for row, user in zip(returned, users))


def test_saved_model_pb_does_not_grow_with_users_and_events(model, tmp_path):
    rng = np.random.default_rng(0)
    items = model.preprocessor.item_text.ids
    item_text = model.preprocessor.item_text.vectors.numpy()[1:]
    sizes = {}
    for count in (1_000, 50_000):
        users = np.array([f"user-{i}" for i in range(count)], dtype=object)
        history = rng.choice(items, (count, 4)).astype(object)
        preprocessor = model.preprocessor.with_state(
            items, item_text, users, rng.normal(size=(count, 8)), history,
            rng.integers(1, 6, (count, 4)).astype(np.float32))
        profiles = {"embedding": rng.normal(size=(count, 8)),
                    "profile_text": np.full(count, "a profile", dtype=object),
                    "interests": np.full((count, 5), "Drama", dtype=object),
                    "interest_weights": np.full((count, 5), 0.2)}
        consumed = pd.DataFrame({"user_id": np.repeat(users, 8),
                                 "item_id": rng.choice(items, count * 8)})
        module = ServingModule(model.with_preprocessor(preprocessor), profiles, k=5,
                               consumed=consumed)
        tf.saved_model.save(module, str(tmp_path / str(count)), signatures=module.signatures())
        sizes[count] = (tmp_path / str(count) / "saved_model.pb").stat().st_size
    # Every per-user and per-event value is in variables/, none in the graph.
    assert abs(sizes[50_000] - sizes[1_000]) < 1_000, sizes
