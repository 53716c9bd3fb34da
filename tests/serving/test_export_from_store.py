import tensorflow as tf

from tf_profiles.cli import main
from tf_profiles.data.loaders import load_items, load_users
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import ProfileStore


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
