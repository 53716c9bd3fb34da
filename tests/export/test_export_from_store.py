import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tf_profiles.cli import main
from tf_profiles.data.loaders import load_items, load_users
from tf_profiles.errors import UserError
from tf_profiles.export.versions import export_model
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import ProfileStore
from tf_profiles.workflows.export_store import refresh_and_export


def test_a_deleted_user_is_gone_from_the_next_export(trained_model, tmp_path, capsys):
    data = trained_model.parent / "data"
    database = tmp_path / "profiles.db"
    with ProfileStore(database) as store:
        store.upsert_items(load_items(data / "items.csv"))
        store.upsert_users(load_users(data / "users.csv"))
        assert ingest_file(store, data / "interactions.csv").rejected == []
    assert main(["delete-user", "u1", "--store", str(database)]) == 0
    base = tmp_path / "tiny"
    assert main(["export", "--model", str(trained_model), "--export-base", str(base),
                 "--store", str(database), "--k", "3"]) == 0
    served = tf.saved_model.load(str(base / "1"))
    found = served.signatures["lookup_profiles"](user_id=tf.constant(["u1", "u2"]))["found"]
    assert found.numpy().tolist() == [False, True]
    # Without a history the deleted user gets no stored one to fall back on.
    empty = served.signatures["serving_default"](
        user_id=tf.constant(["u1"]), history=tf.constant([[""]]), user_text=tf.constant([""]))
    assert empty["item_ids"].shape == (1, 3)



def test_a_deleted_user_is_served_as_a_stranger(trained_model, tmp_path):
    with _filled_store(trained_model, tmp_path / "p.db") as store:
        store.delete_user("u1")
        version = refresh_and_export(trained_model, tmp_path / "tiny", store, k=5,
                                     log=lambda _: None)
    served = tf.saved_model.load(str(version))
    # Before the fix the user-ID row still remembered u1: their top items were theirs.
    top = served.signatures["serving_default"](
        user_id=tf.constant(["u1", "never-seen"]), history=tf.constant([[""], [""]]),
        user_text=tf.constant(["", ""]))
    ids, scores = top["item_ids"].numpy(), top["scores"].numpy()
    assert ids[0].tolist() == ids[1].tolist()
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-6)

def _filled_store(trained_model, path, extra_items=None, extra_users=None, extra_events=None):
    data = trained_model.parent / "data"
    store = ProfileStore(path)
    store.upsert_items(load_items(data / "items.csv"))
    store.upsert_users(load_users(data / "users.csv"))
    if extra_items is not None:
        store.upsert_items(extra_items)
    if extra_users is not None:
        store.upsert_users(extra_users)
    assert ingest_file(store, data / "interactions.csv").rejected == []
    if extra_events is not None:
        extra_events.to_csv(path.parent / "extra.csv", index=False)
        assert ingest_file(store, path.parent / "extra.csv").rejected == []
    return store


def test_stored_profile_and_on_the_fly_embedding_agree(trained_model, tmp_path):
    with _filled_store(trained_model, tmp_path / "p.db") as store:
        version = refresh_and_export(trained_model, tmp_path / "tiny", store, k=3,
                                     log=lambda _: None)
        stored = store.profiles(["u1", "u2"])
    served = tf.saved_model.load(str(version))
    users = tf.constant(["u1", "u2"])
    looked_up = served.signatures["lookup_profiles"](user_id=users)["embedding"].numpy()
    from_stored_state = served.signatures["user_embedding"](
        user_id=users, history=tf.constant([[""], [""]]),
        user_text=tf.constant(["", ""]))["embedding"].numpy()
    # The same history and text, sent explicitly as a fresh request would.
    explicit = served.signatures["user_embedding"](
        user_id=users, history=tf.constant([[i for i, _ in h] for h in stored["history"]]),
        user_text=tf.constant(stored["user_text"].tolist()))["embedding"].numpy()
    np.testing.assert_allclose(looked_up, np.stack(stored["embedding"]), atol=1e-6)
    np.testing.assert_allclose(from_stored_state, looked_up, atol=1e-5)
    np.testing.assert_allclose(explicit, looked_up, atol=1e-5)


def test_items_and_users_that_arrive_only_through_the_store(trained_model, tmp_path):
    new_item = pd.DataFrame({"item_id": ["i99"], "title": ["Brand New Film (2026)"],
                             "tags": ["Drama"]})
    new_user = pd.DataFrame({"user_id": ["u99"], "age": [31], "gender": ["F"],
                             "text": ["loves slow dramas"]})
    events = pd.DataFrame({"user_id": ["u99", "u99", "u1"], "item_id": ["i3", "i99", "i99"],
                           "timestamp": [2_000_000, 2_000_100, 2_000_200],
                           "rating": [4, 5, 5]})
    with _filled_store(trained_model, tmp_path / "p.db", new_item, new_user, events) as store:
        version = refresh_and_export(trained_model, tmp_path / "tiny", store, k=16,
                                     log=lambda _: None)
    served = tf.saved_model.load(str(version))
    profile = served.signatures["lookup_profiles"](user_id=tf.constant(["u99", "u1"]))
    assert profile["found"].numpy().tolist() == [True, True]
    text = profile["profile_text"].numpy()[0].decode()
    assert text.startswith("age 31, female. loves slow dramas.")
    assert "Recently: Brand New Film (2026)" in text
    assert b"Recently: Brand New Film (2026)" in profile["profile_text"].numpy()[1]
    # The new item is in the index, embedded by its stored text.
    item = served.signatures["item_embedding"]
    stored_text = item(item_id=tf.constant(["i99"]), item_text=tf.constant([""]))["embedding"]
    without_text = item(item_id=tf.constant(["i99"]), item_text=tf.constant(["x"]))["embedding"]
    assert not np.allclose(stored_text.numpy(), without_text.numpy())
    ranked = served.signatures["serving_default"](
        user_id=tf.constant(["u2"]), history=tf.constant([[""]]), user_text=tf.constant([""]))
    assert b"i99" in ranked["item_ids"].numpy()[0]


def test_export_only_reads_the_store_and_refuses_stale_profiles(trained_model, tmp_path):
    with _filled_store(trained_model, tmp_path / "p.db") as store:
        with pytest.raises(UserError, match="p.db: the stored profiles were not computed"):
            export_model(trained_model, tmp_path / "tiny", store=store, log=lambda _: None)
        assert store.profiles().empty and not (tmp_path / "tiny" / "1").exists()
        refresh_and_export(trained_model, tmp_path / "tiny", store, k=3, log=lambda _: None)
        assert ingest_file(store, _more_events(tmp_path)).inserted == 1
        with pytest.raises(UserError, match="1 profiles are stale"):
            export_model(trained_model, tmp_path / "tiny", store=store, log=lambda _: None)
        assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["1", "serving"]


def _more_events(tmp_path):
    path = tmp_path / "more.csv"
    path.write_text("user_id,item_id,timestamp,rating\nu1,i2,3000000,4\n")
    return path
