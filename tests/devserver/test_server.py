import logging
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tf_profiles.devserver.grpc_server import start_server
from tf_profiles.devserver.registry import ModelRegistry, ServedModel
from tf_profiles.features.spec import SIGNATURES
from tf_profiles.serving.client import ServingClient
from tf_profiles.serving.tensors import predict_request


@pytest.fixture()
def server(fresh_base):
    registry = ModelRegistry([ServedModel("tiny", fresh_base)])
    grpc_server, port = start_server(registry, port=0, poll_seconds=0.2)
    yield f"127.0.0.1:{port}", fresh_base, registry
    grpc_server.stop(grace=None)
    registry.stop()


@pytest.fixture()
def client(server):
    with ServingClient(server[0], "tiny", max_batch_size=64, max_retries=0) as c:
        yield c


def _raw_predict(target, signature="serving_default", inputs=None, model="tiny", version=None):
    request = predict_request(model, signature, inputs or {}, version)
    with grpc.insecure_channel(target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30)


def _status_of(call):
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details()


def test_every_signature_round_trips_and_equals_the_saved_model(client, exported):
    loaded = tf.saved_model.load(str(exported[1]))
    users, histories, texts = ["u1", "nobody"], [["i1", "i2"], ["i3"]], ["", "likes drama"]
    top = client.recommend(users, histories, texts)
    direct = loaded.signatures["serving_default"](
        user_id=tf.constant(users), history=tf.constant([["i1", "i2"], ["", "i3"]]),
        user_text=tf.constant(texts))
    assert top["item_id"].tolist() == [i.decode() for i in direct["item_ids"].numpy().ravel()]
    np.testing.assert_allclose(top["score"], direct["scores"].numpy().ravel(), atol=1e-6)

    embeddings = client.user_embeddings(users, histories, texts)
    assert embeddings.shape == (2, 9)  # 8 dimensions and the 1 that meets the item bias
    np.testing.assert_allclose(embeddings[:, -1], 1.0)
    items = client.item_embeddings(["i1", "new"], ["", "comedy"])
    np.testing.assert_allclose(items, loaded.signatures["item_embedding"](
        item_id=tf.constant(["i1", "new"]), item_text=tf.constant(["", "comedy"]))["embedding"],
        atol=1e-6)
    profiles = client.lookup_profiles(["u2", "nobody"])
    assert profiles["found"].tolist() == [True, False]
    assert profiles["interests"][0] and profiles["interests"][1] == {}
    assert "Interested in" in profiles["profile_text"][0]


def test_large_lookups_are_chunked_and_keep_their_order(client):
    ids = [f"u{i % 14}" for i in range(1000)]  # u12, u13 unknown
    profiles = client.lookup_profiles(ids)
    assert profiles["user_id"].tolist() == ids
    assert profiles["found"].tolist() == [i % 14 < 12 for i in range(1000)]


def test_metadata_and_status(client):
    metadata = client.metadata()
    assert set(metadata) == set(SIGNATURES)
    assert metadata["lookup_profiles"]["outputs"]["found"] == "bool"
    assert metadata["serving_default"]["inputs"]["history"] == "string"
    assert client.status() == [{"version": 1, "state": "AVAILABLE"}]


@pytest.mark.parametrize("kwargs, code, message", [
    (dict(model="other"), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(other)"),
    (dict(version=7), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Specific(tiny, 7)"),
    (dict(signature="x"), grpc.StatusCode.FAILED_PRECONDITION,
     'Serving signature key "x" not found.'),
    (dict(signature="lookup_profiles", inputs={}), grpc.StatusCode.INVALID_ARGUMENT,
     "Missing input(s): user_id"),
    (dict(signature="lookup_profiles", inputs={"user_id": np.array([b"u1"]),
                                               "users": np.array([b"u1"])}),
     grpc.StatusCode.INVALID_ARGUMENT, "input tensor alias not found in signature: users"),
    (dict(signature="lookup_profiles", inputs={"user_id": np.array([1.5])}),
     grpc.StatusCode.INVALID_ARGUMENT, "Expects arg user_id to be string but float64"),
    (dict(signature="lookup_profiles", inputs={"user_id": np.array([[b"u1"]])}),
     grpc.StatusCode.INVALID_ARGUMENT, "input user_id has shape [1, 1]"),
])
def test_errors_answer_like_tf_serving(server, kwargs, code, message):
    kwargs.setdefault("inputs", {"user_id": np.array([b"u1"])})
    got_code, details = _status_of(lambda: _raw_predict(server[0], **kwargs))
    assert got_code == code and message in details


def test_a_new_version_is_served_without_restart(server, client):
    target, base, registry = server
    staging = base / ".staging-2"
    shutil.copytree(base / "1", staging)
    staging.rename(base / "2")
    deadline = time.time() + 60
    while time.time() < deadline and client.status()[0]["version"] != 2:
        time.sleep(0.2)
    assert client.status() == [{"version": 2, "state": "AVAILABLE"}]
    assert client.lookup_profiles(["u1"])["found"].tolist() == [True]
    pinned = ServingClient(target, "tiny", version=1, max_retries=0)
    code, details = _status_of(lambda: pinned.lookup_profiles(["u1"]))
    assert code == grpc.StatusCode.NOT_FOUND  # the latest-1 policy unloaded version 1
    pinned.close()


def test_models_config_file_selects_versions_and_labels(fresh_base, tmp_path):
    shutil.copytree(fresh_base / "1", fresh_base / "2")
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{ config {{
        name: "tiny" base_path: "{fresh_base}" model_platform: "tensorflow"
        model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
        version_labels {{ key: "stable" value: 1 }} }} }}""")
    registry = ModelRegistry.from_config_file(config)
    grpc_server, port = start_server(registry, port=0, poll_seconds=None)
    try:
        with ServingClient(f"127.0.0.1:{port}", "tiny", version_label="stable") as stable:
            assert stable.status() == [{"version": 1, "state": "AVAILABLE"},
                                       {"version": 2, "state": "AVAILABLE"}]
            assert stable.lookup_profiles(["u1"])["found"].tolist() == [True]
    finally:
        grpc_server.stop(grace=None)


def test_concurrent_clients(client):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.lookup_profiles([f"u{i % 12}"]), range(64)))
    assert all(r["found"].iloc[0] for r in results)


def test_client_retries_unavailable_only():
    client = ServingClient("127.0.0.1:1", "tiny", max_retries=2, backoff_seconds=0.01)
    calls = []

    class Flaky(grpc.RpcError):
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

    def unavailable_twice(request, timeout):
        calls.append(timeout)
        if len(calls) <= 2:
            raise Flaky(grpc.StatusCode.UNAVAILABLE)
        return "ok"

    assert client._call(unavailable_twice, None) == "ok" and len(calls) == 3

    def invalid(request, timeout):
        calls.append(timeout)
        raise Flaky(grpc.StatusCode.INVALID_ARGUMENT)

    calls.clear()
    with pytest.raises(grpc.RpcError):
        client._call(invalid, None)
    assert len(calls) == 1
    client.close()


def test_versions_serve_through_a_broken_a_half_written_and_a_vanishing_version(
        server, client, caplog):
    """TF Serving's availability-preserving policy: under load, no request fails."""
    target, base, registry = server
    failures, answered, stop = [], [], threading.Event()

    def load():
        with ServingClient(target, "tiny", max_retries=0) as steady:
            while not stop.is_set():
                try:
                    steady.lookup_profiles(["u1"])
                    answered.append(1)
                except grpc.RpcError as error:
                    failures.append(error.code())

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        with caplog.at_level(logging.INFO, logger="tf_profiles.devserver.registry"):
            graph = (base / "1" / "saved_model.pb").read_bytes()
            staging = base / ".staging-2"  # broken for good: a truncated graph, moved in whole
            shutil.copytree(base / "1", staging)
            (staging / "saved_model.pb").write_bytes(graph[:len(graph) // 3])
            staging.rename(base / "2")
            (base / "²").mkdir()  # isdigit() but not a number: must not stop the poller
            time.sleep(2)  # ten poll cycles
            assert client.status() == [{"version": 1, "state": "AVAILABLE"}]
            shutil.copytree(base / "1", base / "3")  # written slowly: half, then the rest
            (base / "3" / "saved_model.pb").write_bytes(graph[:len(graph) // 2])
            time.sleep(1)
            (base / "3" / "saved_model.pb").write_bytes(graph)
            _wait_for(lambda: client.status()[0]["version"] == 3)
            away = base.with_name("away")
            base.rename(away)  # the base path gone for a moment
            time.sleep(2)
            away.rename(base)
            time.sleep(1)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    print(f"{len(answered)} answered, {len(failures)} failed")  # docs/reliability.md
    assert failures == [] and len(answered) > 100
    assert client.status() == [{"version": 3, "state": "AVAILABLE"}]
    broken = [r for r in caplog.records if "cannot load tiny version 2" in r.getMessage()]
    assert len(broken) == 1  # logged once, not retried every cycle


def _wait_for(condition, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline and not condition():
        time.sleep(0.2)
    assert condition()
