import numpy as np
import pandas as pd
import pytest

from tf_profiles.cli import main
from tf_profiles.data.loaders import load_items, load_users
from tf_profiles.profiles.builder import ProfileBuilder
from tf_profiles.profiles.explain import explain
from tf_profiles.profiles.timeline import interest_timeline
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import ProfileStore


@pytest.fixture()
def store_path(trained_model, tmp_path):
    data = trained_model.parent / "data"
    path = tmp_path / "profiles.db"
    with ProfileStore(path) as store:
        store.upsert_items(load_items(data / "items.csv"))
        store.upsert_users(load_users(data / "users.csv"))
        ingest_file(store, data / "interactions.csv")
    return path


def test_explanation_names_the_history_and_interests_behind_the_score(trained_model,
                                                                      store_path):
    with ProfileStore(store_path) as store:
        builder = ProfileBuilder.from_model_dir(trained_model, store)
        why = explain(builder, store, "u1", "i3", top=2)
        profile = builder.build(store.events(["u1"]), ["u1"], store.user_attributes(["u1"]))
        history = set(store.events(["u1"])["item_id"])
    items = builder.item_embeddings()
    (row,) = builder.item_rows(["i3"])
    assert why.score == pytest.approx(float(items[row] @ profile["embedding"][0]), abs=1e-5)
    # i3 may be one of u1's own items: then it is ranked among the unseen ones.
    assert 1 <= why.rank <= why.candidates == len(builder.items) - len(history - {"i3"})
    assert len(why.similar_history) == 2 and {h[0] for h in why.similar_history} <= history
    similarities = [h[3] for h in why.similar_history]
    assert similarities == sorted(similarities, reverse=True)
    item_tags = set(builder.items.set_index("item_id")["tags"]["i3"].split("|"))
    assert {tag for tag, _ in why.shared_interests} <= item_tags
    assert "ranked" in why.summary() and why.profile_text in why.summary()


def test_explain_names_an_unknown_user_or_item(trained_model, store_path):
    with ProfileStore(store_path) as store:
        builder = ProfileBuilder.from_model_dir(trained_model, store)
        with pytest.raises(ValueError, match="user 'nobody' has no events"):
            explain(builder, store, "nobody", "i3")
        with pytest.raises(ValueError, match="item 'i404' is not in the catalogue"):
            explain(builder, store, "u1", "i404")


def test_cli_explain_and_profile_show(trained_model, store_path, tmp_path, capsys):
    assert main(["explain", "u2", "i5", "--store", str(store_path),
                 "--model", str(trained_model)]) == 0
    assert "Closest in the user's history" in capsys.readouterr().out
    assert main(["profile", "show", "u2", "--store", str(store_path),
                 "--png", str(tmp_path / "u2.png")]) == 0
    assert "no stored profile yet" in capsys.readouterr().out
    assert main(["refresh", "--store", str(store_path), "--model", str(trained_model)]) == 0
    assert "12 profiles refreshed" in capsys.readouterr().out
    assert main(["profile", "show", "u2", "--store", str(store_path),
                 "--png", str(tmp_path / "u2.png")]) == 0
    out = capsys.readouterr().out
    assert "Interested in" in out and "STALE" not in out
    assert (tmp_path / "u2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["profile", "show", "nobody", "--store", str(store_path)]) == 2
    assert "user 'nobody' has no events or attributes" in capsys.readouterr().err


def test_timeline_follows_a_change_of_taste():
    items = pd.DataFrame({"item_id": ["a", "b"], "tags": ["Action", "Drama"]})
    day = 86_400
    events = pd.DataFrame({
        "user_id": "u", "item_id": ["a"] * 5 + ["b"] * 5,
        "timestamp": [day * d for d in range(10)], "rating": [5.0] * 10})
    timeline = interest_timeline(events, items, half_life_days=3, points=10)
    drama = timeline[timeline["tag"] == "Drama"].set_index("as_of")["weight"]
    action = timeline[timeline["tag"] == "Action"].set_index("as_of")["weight"]
    assert action.iloc[0] == 1.0 and 4 * day not in drama.index
    assert drama.is_monotonic_increasing and action.is_monotonic_decreasing
    # At the last event: Drama 0–4 days old, Action 5–9 days old, half-life 3 days.
    recent, old = (sum(0.5 ** (age / 3) for age in ages) for ages in (range(5), range(5, 10)))
    assert drama.iloc[-1] == pytest.approx(recent / (recent + old))
    assert np.allclose(timeline.groupby("as_of")["weight"].sum(), 1.0)


def test_explain_and_show_cite_what_the_user_wrote(trained_model, store_path):
    from tf_profiles.profiles.show import profile_lines
    from tf_profiles.store.store import event_key

    with ProfileStore(store_path) as store:
        latest = int(store.events(["u1"])["timestamp"].max())
        store.add_events([(event_key("u1", "i3", latest + 1), "u1", "i3", latest + 1, None,
                           "A slow burn with a strong lead, " + "loved it " * 20)])
        builder = ProfileBuilder.from_model_dir(trained_model, store)
        why = explain(builder, store, "u1", "i3", top=builder.max_history)
        lines = profile_lines(store, "u1")
    cited = [h for h in why.similar_history if h[0] == "i3"]
    assert cited and cited[0][4].startswith("A slow burn")
    assert 'wrote "A slow burn with a strong lead' in why.summary()
    assert "…" in why.summary()  # long texts are cut when cited
    assert "recent words (newest first):" in lines
    assert any('"A slow burn' in line for line in lines)


def test_profile_show_charts_mined_terms_of_an_untagged_catalogue(trained_model, tmp_path,
                                                                   capsys):
    data = trained_model.parent / "data"
    path = tmp_path / "untagged.db"
    items = load_items(data / "items.csv")
    with ProfileStore(path) as store:
        store.upsert_items(items.assign(tags=""))
        ingest_file(store, data / "interactions.csv")
    png = str(tmp_path / "u1.png")
    assert main(["profile", "show", "u1", "--store", str(path), "--png", png]) == 0
    assert "empty: no interest terms" in capsys.readouterr().out
    assert main(["profile", "show", "u1", "--store", str(path), "--png", png,
                 "--model", str(trained_model), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert f"chart: {png}\n" in out and "empty" not in out
    with ProfileStore(path) as store:
        mined = ProfileBuilder.from_model_dir(trained_model, store).interest_items()
        timeline = interest_timeline(store.events(["u1"]), mined)
    assert len(timeline) and set(timeline["tag"]) <= {
        term for terms in mined["tags"] for term in terms.split("|")}
