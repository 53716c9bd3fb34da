"""TF Serving's REST API of the local server, over plain HTTP, against its gRPC answers."""
import base64
import json
import shutil
from types import SimpleNamespace
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import grpc
import numpy as np
import pandas as pd
import pytest
from google.protobuf import json_format, text_format
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis.get_model_status_pb2 import GetModelStatusRequest
from tensorflow_serving.config import model_server_config_pb2

from tf_profiles.cli import main
from tf_profiles.features.spec import SIGNATURES
from tf_profiles.serving.client import ServingClient
from tf_profiles.devserver.rest import start_rest_server
from tf_profiles.devserver.grpc_server import start_server
from tf_profiles.devserver.registry import ModelRegistry

LOOKUP = "lookup_profiles"
USERS = dict(user_id=["u1", "nobody"], history=[["i1", "i2"], ["", "i3"]],
             user_text=["", "likes drama"])
INPUTS = {"serving_default": USERS, "user_embedding": USERS,
          "item_embedding": dict(item_id=["i1", "new"], item_text=["", "comedy"]),
          "lookup_profiles": dict(user_id=["u2", "nobody"]),
          "text_sentiment": dict(text=["I hated it", "a man eating food"])}


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """One registry, versions 1 and 2 and the label stable → 1, on a gRPC and a REST port."""
    base = tmp_path_factory.mktemp("rest") / "tiny"
    shutil.copytree(exported[0], base)
    shutil.copytree(base / "1", base / "2")
    config = model_server_config_pb2.ModelServerConfig()
    entry = config.model_config_list.config.add(name="tiny", base_path=str(base),
                                                model_platform="tensorflow")
    entry.model_version_policy.specific.versions.extend([1, 2])
    entry.version_labels["stable"] = 1
    path = base.parent / "models.config"
    path.write_text(text_format.MessageToString(config))
    registry = ModelRegistry.from_config_file(path)
    grpc_server, grpc_port = start_server(registry, port=0, poll_seconds=None)
    rest_server, rest_port = start_rest_server(registry, port=0)
    grpc_client = ServingClient(f"127.0.0.1:{grpc_port}", "tiny", max_retries=0)
    yield SimpleNamespace(grpc=grpc_client, rest=f"127.0.0.1:{rest_port}",
                          url=f"http://127.0.0.1:{rest_port}/v1/models/tiny")
    grpc_client.close()
    rest_server.shutdown()
    rest_server.server_close()
    grpc_server.stop(grace=None)


def _http(url, body=None):
    """(HTTP status, JSON answer) of a GET, or of a POST of ``body`` (bytes or JSON)."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    try:
        with urlopen(Request(url, data), timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def _grpc_answer(served, signature):
    inputs = {k: np.array([[s.encode() for s in row] if isinstance(row, list) else row.encode()
                           for row in v], dtype=object) for k, v in INPUTS[signature].items()}
    return served.grpc.predict(signature, inputs)


def _assert_equal(json_values, expected: np.ndarray):
    if expected.dtype == object:
        assert np.array(json_values, dtype=object).tolist() == [
            [s.decode() for s in row] if expected.ndim > 1 else row.decode() for row in expected]
    else:
        np.testing.assert_allclose(np.asarray(json_values, expected.dtype), expected, atol=1e-6)


@pytest.mark.parametrize("signature", SIGNATURES)
def test_both_formats_equal_the_grpc_answer(served, signature):
    expected = _grpc_answer(served, signature)
    inputs = INPUTS[signature]
    status, columns = _http(f"{served.url}:predict",
                            {"signature_name": signature, "inputs": inputs})
    assert status == 200, columns
    rows = [dict(zip(inputs, values)) for values in zip(*inputs.values())]
    status, predictions = _http(f"{served.url}:predict",
                                {"signature_name": signature, "instances": rows})
    assert status == 200, predictions
    if len(expected) == 1:  # a single output comes bare, in either format
        (name, array), = expected.items()
        _assert_equal(columns["outputs"], array)
        _assert_equal(predictions["predictions"], array)
        return
    assert set(columns["outputs"]) == set(expected)
    for name, array in expected.items():
        _assert_equal(columns["outputs"][name], array)
        _assert_equal([row[name] for row in predictions["predictions"]], array)


def test_a_single_input_takes_bare_values_and_b64(served):
    expected = _grpc_answer(served, LOOKUP)["found"].tolist()
    encoded = [{"b64": base64.b64encode(u.encode()).decode()} for u in ["u2", "nobody"]]
    for instances in (["u2", "nobody"], encoded):
        status, answer = _http(f"{served.url}:predict",
                               {"signature_name": LOOKUP, "instances": instances})
        assert status == 200 and [row["found"] for row in answer["predictions"]] == expected
    status, answer = _http(f"{served.url}:predict", {"signature_name": LOOKUP, "inputs": encoded})
    assert status == 200 and answer["outputs"]["found"] == expected


def test_status_and_metadata_as_tf_serving_writes_them(served):
    def version_status(version):
        return {"version": str(version), "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}}

    assert _http(served.url) == (200, {"model_version_status": [version_status(1),
                                                                version_status(2)]})
    assert _http(f"{served.url}/versions/1") == (200, {"model_version_status": [
        version_status(1)]})
    # TF Serving's GetModelStatus does not resolve a label: every version.
    assert _http(f"{served.url}/labels/stable")[1]["model_version_status"][1]["version"] == "2"

    status, metadata = _http(f"{served.url}/labels/stable/metadata")
    assert status == 200
    assert metadata["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    served.grpc.predictions.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=served.grpc._model_spec(), metadata_field=["signature_def"]),
        timeout=30).metadata["signature_def"].Unpack(signature_map)
    assert metadata["metadata"]["signature_def"] == json_format.MessageToDict(
        signature_map, preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True)
    lookup = metadata["metadata"]["signature_def"]["signature_def"]["lookup_profiles"]
    assert lookup["outputs"]["found"]["dtype"] == "DT_BOOL"
    assert set(metadata["metadata"]["signature_def"]["signature_def"]) == set(SIGNATURES)
    assert _http(f"{served.url}/metadata")[1]["model_spec"]["version"] == "2"


def test_versions_and_labels_predict(served):
    body = {"signature_name": "lookup_profiles", "instances": ["u1"]}
    for path in ("/versions/1", "/versions/2", "/labels/stable", ""):
        status, answer = _http(f"{served.url}{path}:predict", body)
        assert status == 200 and answer["predictions"][0]["found"] is True


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/other", None, 404, "Could not find any versions of model other"),
    ("/v1/models/tiny/versions/7", None, 404, "Could not find version 7 of model tiny"),
    ("/v1/models/other/metadata", None, 404, "Servable not found for request: Latest(other)"),
    ("/v1/models/other:predict", {"instances": ["u1"]}, 404,
     "Servable not found for request: Latest(other)"),
    ("/v1/models/tiny/versions/7:predict", {"instances": ["u1"]}, 404,
     "Servable not found for request: Specific(tiny, 7)"),
    ("/v1/models/tiny/labels/canary:predict", {"instances": ["u1"]}, 400,
     "Unrecognized servable version label: canary"),
    ("/v1/models/tiny:predict", {"signature_name": "x", "instances": ["u1"]}, 400,
     'Serving signature name: "x" not found in signature def'),
    ("/v1/models/tiny:predict", {"signature_name": LOOKUP, "inputs": {"user_id": [1.5]}}, 400,
     "JSON Value: 1.5 Type: Number is not of expected type: string"),
    ("/v1/models/tiny:predict", {"signature_name": LOOKUP, "instances": [{"user": "u1"}]}, 400,
     "Failed to process element: 0 key: user of 'instances' list. Error: INVALID_ARGUMENT: "
     "JSON object: does not have named input: user"),
    ("/v1/models/tiny:predict", {"signature_name": LOOKUP, "inputs": [["u1"]]}, 400,
     "input user_id has shape [1, 1]"),
    ("/v1/models/tiny:predict", {"signature_name": LOOKUP, "inputs": ["u1", ["u2"]]}, 400,
     "Encountered list at unexpected level: 1 expected < 1"),
    ("/v1/models/tiny:predict", {"instances": ["u1"]}, 400,
     "instances is a plain list, but expecting list of objects"),
    ("/v1/models/tiny:predict", {"instances": [{"user_id": "u1", "history": [""]}]}, 400,
     "keys must be equal to: history,user_id,user_text"),
    ("/v1/models/tiny:predict", {"inputs": {"user_id": ["u1"]}}, 400,
     "Missing named input: history in 'inputs' object."),
    ("/v1/models/tiny:predict", {"instances": [], "signature_name": LOOKUP}, 400,
     "No values in 'instances' array"),
    ("/v1/models/tiny:predict", {"instances": ["u1"], "inputs": ["u1"]}, 400,
     "expecting only one of 'inputs' or 'instances' keys to exist"),
    ("/v1/models/tiny:predict", {"signature_name": LOOKUP}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("/v1/models/tiny:predict", b'{"instances": [', 400, "JSON Parse error: "),
    ("/v1/models/tiny:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("/v1/models/tiny:predict", b"[1]", 400, "JSON Value: [1] Is not object"),
    # Malformed JSON beyond rapidjson's reach of Python's decoder: 400, not 500.
    ("/v1/models/tiny:predict", b'{"signature_name": "lookup_profiles", "instances": ["\\ud800"]}',
     400, "The surrogate pair in string is invalid"),
    ("/v1/models/tiny:predict", b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400,
     "nested too deeply"),
    ("/v1/models/tiny:predict", b'{"instances": [' + b"9" * 5000 + b"]}", 400,
     "JSON Parse error: Exceeds the limit"),
    ("/v1/models/tiny/other", None, 400, "Malformed request: GET /v1/models/tiny/other"),
])
def test_errors_answer_like_tf_serving(served, path, body, status, message):
    got_status, answer = _http(served.url.replace("/v1/models/tiny", "") + path, body)
    assert got_status == status and message in answer["error"], answer


def test_paths_outside_v1_are_not_found(served):
    with pytest.raises(HTTPError) as raised:
        urlopen(served.url.replace("/v1/models/tiny", "/v2/models/tiny"), timeout=60)
    assert raised.value.code == 404


def test_the_client_round_trips_every_method_over_rest(served):
    with ServingClient(served.rest, "tiny", protocol="rest", max_batch_size=3,
                       max_retries=0) as rest:
        grpc_client = served.grpc
        users, histories = ["u1", "nobody", "u3", "u4"], [["i1", "i2"], ["i3"], [], ["i4"]]
        # Other batch sizes (3 rows here): float sums may differ in the last bits.
        pd.testing.assert_frame_equal(rest.recommend(users, histories),
                                      grpc_client.recommend(users, histories), atol=1e-6)
        np.testing.assert_allclose(rest.user_embeddings(users, histories),
                                   grpc_client.user_embeddings(users, histories), atol=1e-6)
        np.testing.assert_allclose(rest.item_embeddings(["i1", "new"], ["", "comedy"]),
                                   grpc_client.item_embeddings(["i1", "new"], ["", "comedy"]),
                                   atol=1e-6)
        ids = [f"u{i % 14}" for i in range(10)]
        rest_profiles, grpc_profiles = rest.lookup_profiles(ids), grpc_client.lookup_profiles(ids)
        pd.testing.assert_frame_equal(rest_profiles.drop(columns="embedding"),
                                      grpc_profiles.drop(columns="embedding"))
        np.testing.assert_allclose(np.stack(rest_profiles["embedding"]),
                                   np.stack(grpc_profiles["embedding"]), atol=1e-6)
        assert rest.metadata() == grpc_client.metadata()
        assert rest.status() == grpc_client.status()
    with ServingClient(served.rest, "other", protocol="rest", max_retries=0) as other:
        with pytest.raises(grpc.RpcError) as raised:
            other.status()
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with ServingClient(served.rest, "tiny", version_label="stable", protocol="rest") as stable:
        assert stable.lookup_profiles(["u1"])["found"].tolist() == [True]


def test_connection_refused_is_unavailable_and_retried():
    with ServingClient("127.0.0.1:1", "tiny", protocol="rest", max_retries=2,
                       backoff_seconds=0.01) as client:
        calls = []
        stub_status = client.models.GetModelStatus

        def counted(request, timeout):
            calls.append(timeout)
            return stub_status(request, timeout)

        with pytest.raises(grpc.RpcError) as raised:
            client._call(counted, GetModelStatusRequest(model_spec=client._model_spec()))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE and len(calls) == 3


def test_query_command_over_rest(served, capsys):
    assert main(["query", "--protocol", "rest", "--server", served.rest, "--model-name", "tiny",
                 "lookup", "u1", "nobody"]) == 0
    out = capsys.readouterr().out
    assert "Interested in" in out and "False" in out
    assert main(["query", "--protocol", "rest", "--server", served.rest, "--model-name",
                 "other", "status"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
