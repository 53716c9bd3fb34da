import numpy as np
import pytest
import tensorflow as tf

from tf_profiles.cli import main
from tf_profiles.bundle.inference import item_embeddings
from tf_profiles.serving.client import ServingClient
from tf_profiles.export.versions import export_model
from tf_profiles.devserver.grpc_server import start_server
from tf_profiles.devserver.registry import ModelRegistry, ServedModel
from tf_profiles.serving.sharded_client import ShardedClient
from tf_profiles.export.shards import export_shards, shard_bounds, shard_name
from tf_profiles.bundle.model_dir import ModelDir

from tests.conftest import read_json

USERS = ["u1", "u5", "nobody"]
HISTORIES = [["i1", "i2"], ["i3"], ["i4", "i0"]]
TEXTS = ["", "likes drama", ""]


@pytest.fixture(scope="module")
def catalogue(trained_model):
    """(item ids, [15, 9] item embeddings: 8 dimensions and the bias) of the tiny model."""
    folder = ModelDir(trained_model)
    items = folder.catalogue()
    ids = items.items["item_id"].tolist()
    return ids, item_embeddings(folder.load_model(), ids)


@pytest.fixture(scope="module")
def shard_sets(catalogue, tmp_path_factory):
    """{shard k: (base, version folders)}: S=3 shards of 5 items, padded (k=8) or not (k=4)."""
    ids, embeddings = catalogue
    sets = {}
    for k in (8, 4):
        base = tmp_path_factory.mktemp(f"shards_k{k}")
        sets[k] = base, export_shards(ids, embeddings, base, "tiny", num_shards=3, k=k,
                                      main_model="tiny", models_root=str(base), log=lambda _: 0)
    return sets


@pytest.fixture(scope="module")
def target(trained_model, exported, shard_sets, tmp_path_factory):
    """A local server with the main servable, the same without consumed-item
    exclusion (tiny-repeats: shards exclude only the request's history, like
    it) and both shard sets (tiny-k8-shard-i, ...)."""
    repeats = tmp_path_factory.mktemp("repeats") / "tiny-repeats"
    export_model(trained_model, repeats, k=5, exclude_consumed=False, log=lambda _: None)
    models = [ServedModel("tiny", exported[0]), ServedModel("tiny-repeats", repeats)]
    for k, (base, versions) in shard_sets.items():
        models += [ServedModel(f"k{k}-{v.parent.name}", v.parent) for v in versions]
    registry = ModelRegistry(models)
    grpc_server, port = start_server(registry, port=0, poll_seconds=None)
    yield f"127.0.0.1:{port}"
    grpc_server.stop(grace=None)


def test_shards_are_written_as_separate_models_with_their_exact_top_k(catalogue, shard_sets):
    ids, embeddings = catalogue
    base, versions = shard_sets[4]
    assert versions == [base / shard_name("tiny", i) / "1" for i in range(3)]
    assert not list(base.glob("**/.staging-*"))
    query = tf.math.l2_normalize(tf.random.stateless_normal([2, embeddings.shape[1]],
                                                           seed=[1, 2]), axis=1)
    for (start, stop), version in zip(shard_bounds(len(ids), 3), versions):
        metadata = read_json(version / "assets.extra/tf_profiles.json")
        assert metadata["rows"] == [start, stop] and metadata["k"] == 4
        # Index only: the shard's variables are its ids and vectors, nothing else.
        loaded = tf.saved_model.load(str(version))
        assert list(loaded.signatures) == ["top_k"]
        out = loaded.signatures["top_k"](query=query)
        scores = query.numpy() @ embeddings[start:stop].T
        best = np.argsort(-scores, axis=1)[:, :4]
        assert out["item_ids"].numpy().astype(str).tolist() == np.asarray(
            ids[start:stop])[best].tolist()
        np.testing.assert_allclose(out["scores"], np.take_along_axis(scores, best, 1),
                                   atol=1e-5)
    config = ModelRegistry.from_config_file(base / "tiny-shards.models.config")
    assert {name: str(m.base_path) for name, m in config.models.items()} == {
        name: str(base / name) for name in ["tiny"] + [shard_name("tiny", i) for i in range(3)]}


def test_a_shard_smaller_than_k_pads_with_empty_ids(catalogue, shard_sets):
    loaded = tf.saved_model.load(str(shard_sets[8][1][0]))
    out = loaded.signatures["top_k"](query=tf.ones([1, catalogue[1].shape[1]]))
    assert out["item_ids"].shape == (1, 8)
    assert out["item_ids"].numpy()[0, 5:].tolist() == [b""] * 3
    assert np.isneginf(out["scores"].numpy()[0, 5:]).all()


@pytest.mark.parametrize("shard_k, k", [(8, 5), (4, 2)])
def test_merged_shards_equal_the_single_index_over_grpc(target, shard_k, k):
    with ServingClient(target, "tiny-repeats", max_retries=0) as single:
        expected = single.recommend(USERS, HISTORIES, TEXTS)  # serving_default, K=5
    names = [f"k{shard_k}-{shard_name('tiny', i)}" for i in range(3)]
    with ShardedClient(target, "tiny", names, k=k, max_retries=0) as sharded:
        merged = sharded.recommend(USERS, HISTORIES, TEXTS)
    expected = expected[expected["rank"] <= k].reset_index(drop=True)
    assert merged[["user_id", "rank", "item_id"]].equals(expected[["user_id", "rank", "item_id"]])
    np.testing.assert_allclose(merged["score"], expected["score"], atol=1e-5)
    for user, history in zip(USERS, HISTORIES):
        assert not set(merged[merged["user_id"] == user]["item_id"]) & set(history)


def test_a_history_hiding_too_much_of_a_shard_is_refused(target, catalogue):
    ids, _ = catalogue
    # Shard 0 holds ids[:5] and returns its best 4, whatever the query: all in the history.
    names = [f"k4-{shard_name('tiny', i)}" for i in range(3)]
    with ShardedClient(target, "tiny", names, k=2, max_retries=0) as sharded:
        with pytest.raises(ValueError, match=r"user u1: shard k4-tiny-shard-0 returns 4 items, "
                                             r"4 of them in the history, leaving 0 < k=2"):
            sharded.recommend(["u1"], [ids[:5]])


def test_export_refuses_repeated_ids_bad_counts_and_existing_versions(catalogue, shard_sets):
    ids, embeddings = catalogue
    base = shard_sets[4][0]
    with pytest.raises(ValueError, match="item ids repeat"):
        export_shards(["a", "a"], embeddings[:2], base, "dup", 2, log=lambda _: 0)
    with pytest.raises(ValueError, match="num_shards=16: need 1 ≤ num_shards ≤ 15"):
        export_shards(ids, embeddings, base, "many", 16, log=lambda _: 0)
    with pytest.raises(ValueError, match="tiny-shard-0/1: version 1 exists already"):
        export_shards(ids, embeddings, base, "tiny", 3, version=1, log=lambda _: 0)


def test_export_shards_command(trained_model, catalogue, tmp_path):
    assert main(["export-shards", "--model", str(trained_model), "--export-base",
                 str(tmp_path), "--name", "tiny", "--shards", "2", "--k", "4",
                 "--main-model", "tiny", "--models-root", str(tmp_path)]) == 0
    config = ModelRegistry.from_config_file(tmp_path / "tiny-shards.models.config")
    assert sorted(config.models) == ["tiny", "tiny-shard-0", "tiny-shard-1"]
    loaded = [tf.saved_model.load(str(tmp_path / shard_name("tiny", i) / "1")) for i in (0, 1)]
    width = catalogue[1].shape[1]
    answers = [m.signatures["top_k"](query=tf.ones((1, width)))["item_ids"] for m in loaded]
    assert all(a.shape == (1, 4) for a in answers)
    assert main(["export-shards", "--model", str(trained_model), "--export-base",
                 str(tmp_path), "--name", "tiny", "--shards", "0"]) == 2
