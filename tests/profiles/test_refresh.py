import numpy as np
import pandas as pd
import pytest

from tf_profiles.data.loaders import load_items, load_users
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.profiles.refresh import refresh_profiles
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import ProfileStore, event_key


@pytest.fixture(scope="module")
def builder(trained_model):
    return ProfileBuilder.from_model_dir(trained_model, cache_dir=trained_model.parent / "cache")


@pytest.fixture()
def events(trained_model):
    return pd.read_csv(trained_model.parent / "data" / "interactions.csv", dtype={"rating": float})


def _store(path, data, events, tmp_path, name="events.csv"):
    store = ProfileStore(path)
    store.upsert_items(load_items(data / "items.csv"))
    store.upsert_users(load_users(data / "users.csv"))
    _ingest(store, events, tmp_path / name)
    return store


def _ingest(store, events, path):
    events.to_csv(path, index=False)
    assert ingest_file(store, path).rejected == []


def _compare(left, right):
    assert left["user_id"].tolist() == right["user_id"].tolist()
    np.testing.assert_allclose(np.stack(left["embedding"]), np.stack(right["embedding"]),
                               atol=1e-5)
    assert left["history"].tolist() == right["history"].tolist()
    assert left["description"].tolist() == right["description"].tolist()
    for a, b in zip(left["interests"], right["interests"]):
        assert [t for t, _ in a] == [t for t, _ in b]
        np.testing.assert_allclose([w for _, w in a], [w for _, w in b], atol=1e-6)


def test_fast_path_equals_a_recompute_from_scratch(trained_model, builder, events, tmp_path):
    data = trained_model.parent / "data"
    late = events["user_id"].isin(["u1", "u4", "u7"]) & (
        events.groupby("user_id").cumcount(ascending=False) < 2)
    with _store(tmp_path / "incremental.db", data, events[~late], tmp_path) as store:
        first = refresh_profiles(store, builder, batch_size=5)
        assert (first.stale, first.written) == (12, 12)
        before = store.profiles()
        _ingest(store, events[late], tmp_path / "late.csv")
        assert sorted(store.stale_users()) == ["u1", "u4", "u7"]
        second = refresh_profiles(store, builder, batch_size=5)
        # Only the touched users are recomputed.
        assert (second.stale, second.written, second.events) == (3, 3, 3 * 8)
        incremental = store.profiles()
    with _store(tmp_path / "scratch.db", data, events, tmp_path, "all.csv") as store:
        refresh_profiles(store, builder, batch_size=64)
        _compare(incremental, store.profiles())
    untouched = ~incremental["user_id"].isin(["u1", "u4", "u7"])
    assert (incremental["updated_at"][untouched] == before["updated_at"][untouched]).all()
    assert not np.allclose(np.stack(incremental["embedding"][~untouched]),
                           np.stack(before["embedding"][~untouched]))


def test_nothing_changed_means_nothing_recomputed(trained_model, builder, events, tmp_path):
    with _store(tmp_path / "p.db", trained_model.parent / "data", events, tmp_path) as store:
        refresh_profiles(store, builder)
        again = refresh_profiles(store, builder)
        assert (again.stale, again.written) == (0, 0)
        # Re-sending events already stored marks nobody.
        _ingest(store, events, tmp_path / "again.csv")
        assert store.stale_users() == {}


def test_a_user_changed_or_deleted_meanwhile_is_not_overwritten(trained_model, builder, events,
                                                               tmp_path):
    with _store(tmp_path / "p.db", trained_model.parent / "data", events, tmp_path) as store:
        marks = store.stale_users()
        users = ["u1", "u2", "u3"]
        built = builder.build(store.events(users), users, store.user_attributes(users))
        store.add_events([(event_key("u1", "i0", 5), "u1", "i0", 5, 4.0)])
        store.delete_user("u2")
        rows = [{"user_id": u, "embedding": built["embedding"][i], "user_text": "",
                 "history": [], "interests": [], "description": "", "model_key": "k"}
                for i, u in enumerate(users)]
        assert store.write_profiles(rows, marks) == 1
        assert store.profiles()["user_id"].tolist() == ["u3"]
        assert "u1" in store.stale_users() and "u2" not in store.stale_users()


def test_profiles_of_another_model_are_recomputed(trained_model, builder, events, tmp_path):
    with _store(tmp_path / "p.db", trained_model.parent / "data", events, tmp_path) as store:
        refresh_profiles(store, builder)
        builder.model_key, original = "fine-tuned", builder.model_key
        try:
            report = refresh_profiles(store, builder)
        finally:
            builder.model_key = original
        assert report.written == 12
        assert set(store.profiles()["model_key"]) == {"fine-tuned"}


def test_changed_attributes_mark_the_user_stale(trained_model, builder, events, tmp_path):
    with _store(tmp_path / "p.db", trained_model.parent / "data", events, tmp_path) as store:
        refresh_profiles(store, builder)
        unchanged = load_users(trained_model.parent / "data" / "users.csv")
        store.upsert_users(unchanged)
        assert store.stale_users() == {}
        store.upsert_users(unchanged.assign(age=99)[unchanged["user_id"] == "u5"])
        assert list(store.stale_users()) == ["u5"]
        refresh_profiles(store, builder)
        assert store.profiles(["u5"])["description"][0].startswith("age 99")


def test_a_failed_batch_writes_nothing_and_keeps_the_marks(trained_model, builder, events,
                                                          tmp_path):
    with _store(tmp_path / "p.db", trained_model.parent / "data", events, tmp_path) as store:
        marks = store.stale_users()
        good = {"user_id": "u1", "embedding": np.zeros(8, np.float32), "user_text": "",
                "history": [], "interests": [], "description": "", "model_key": "k"}
        broken = {**good, "user_id": "u2", "history": object()}  # not JSON: fails mid-batch
        with pytest.raises(TypeError):
            store.write_profiles([good, broken], marks)
        assert store.profiles().empty and store.stale_users() == marks
