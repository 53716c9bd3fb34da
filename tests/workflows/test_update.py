"""`tf-profiles update` end to end: the new version is served with the new profiles."""
import json
import time

import pandas as pd
import pytest

from tf_profiles.bundle.model_dir import ModelDir
from tf_profiles.cli import main
from tf_profiles.data.loaders import load_items
from tf_profiles.devserver.grpc_server import start_server
from tf_profiles.devserver.registry import ModelRegistry, ServedModel
from tf_profiles.serving.client import ServingClient
from tf_profiles.store.ingest import ingest_file
from tf_profiles.store.store import ProfileStore


def _wait_for_version(client, version, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline and client.status()[0]["version"] != version:
        time.sleep(0.2)
    assert client.status()[0]["version"] == version


def test_update_publishes_a_version_that_answers_with_the_new_profile(trained_model, tmp_path,
                                                                      capsys):
    data, store, base = trained_model.parent / "data", tmp_path / "p.db", tmp_path / "tiny"
    common = ["--store", str(store), "--model", str(trained_model), "--export-base", str(base),
              "--k", "5"]
    assert main(["update", str(data / "interactions.csv"), "--items", str(data / "items.csv"),
                 "--users", str(data / "users.csv"), *common]) == 0
    registry = ModelRegistry([ServedModel("tiny", base)])
    server, port = start_server(registry, port=0, poll_seconds=0.2)
    try:
        with ServingClient(f"127.0.0.1:{port}", "tiny", max_retries=0) as client:
            _wait_for_version(client, 1)
            before = client.lookup_profiles(["u3", "u5"])
            # u3 watches two new items, loving one and hating the other.
            pd.DataFrame({"user_id": ["u3", "u3"], "item_id": ["i11", "i12"],
                          "timestamp": [3_000_000, 3_000_100], "rating": [5, 1]}).to_csv(
                tmp_path / "new.csv", index=False)
            capsys.readouterr()
            assert main(["update", str(tmp_path / "new.csv"), *common]) == 0
            out = capsys.readouterr().out
            assert "2 inserted" in out and "1 profiles refreshed" in out
            _wait_for_version(client, 2)
            after = client.lookup_profiles(["u3", "u5"])
    finally:
        server.stop(grace=None)
        registry.stop()
    with ProfileStore(store) as opened:
        stored = opened.profiles(["u3"]).iloc[0]
    assert after["profile_text"][0] == stored["description"] != before["profile_text"][0]
    assert "Recently: Star Wars 12 (1977), Star Wars 11 (1977)" in after["profile_text"][0]
    assert after["embedding"][0] == pytest.approx(stored["embedding"], abs=1e-6)
    assert after["profile_text"][1] == before["profile_text"][1]  # u5 untouched


def test_a_refused_fine_tune_publishes_with_the_previous_model(trained_model, tmp_path, capsys):
    data, store, base = trained_model.parent / "data", tmp_path / "p.db", tmp_path / "tiny"
    # Two events on items new to u3: the fine-tune trains on the first, and
    # the guard ranks the latest.
    pd.DataFrame({"user_id": ["u3", "u3"], "item_id": ["i1", "i2"],
                  "timestamp": [3_000_000, 3_000_100], "rating": [5, 5]}).to_csv(
        tmp_path / "new.csv", index=False)
    assert main(["ingest", str(data / "interactions.csv"), "--store", str(store),
                 "--items", str(data / "items.csv"), "--users", str(data / "users.csv")]) == 0
    code = main(["update", str(tmp_path / "new.csv"), "--store", str(store),
                 "--model", str(trained_model), "--export-base", str(base),
                 "--finetune-output", str(tmp_path / "tuned"), "--max-ndcg-drop", "-1"])
    assert code == 3
    assert "REFUSED" in capsys.readouterr().out
    metadata = json.loads((base / "1" / "assets.extra" / "tf_profiles.json").read_text())
    # The previous model was published: its weights, named without a path.
    assert metadata["model_key"] == ModelDir(trained_model).key()
    assert metadata["model_dir"] == trained_model.name and "/" not in json.dumps(metadata)


def test_the_half_life_a_refresh_used_is_what_export_store_serves(trained_model, tmp_path):
    data, database = trained_model.parent / "data", tmp_path / "p.db"
    with ProfileStore(database) as store:
        store.upsert_items(load_items(data / "items.csv"))
        assert ingest_file(store, data / "interactions.csv").rejected == []
    assert main(["refresh", "--store", str(database), "--model", str(trained_model),
                 "--half-life-days", "30"]) == 0
    with ProfileStore(database) as store:
        assert store.profile_settings() == {"half_life_days": 30.0}
        at_30 = store.profiles()["interests"].tolist()
        # Without the flag export --store keeps 30: nothing is stale, nothing recomputed.
        assert main(["export", "--store", str(database), "--model", str(trained_model),
                     "--export-base", str(tmp_path / "tiny")]) == 0
        assert store.profiles()["interests"].tolist() == at_30
        assert main(["export", "--store", str(database), "--model", str(trained_model),
                     "--export-base", str(tmp_path / "tiny"), "--half-life-days", "1"]) == 0
        assert store.profile_settings() == {"half_life_days": 1.0}
        assert store.profiles()["interests"].tolist() != at_30
