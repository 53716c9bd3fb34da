"""Every request is bounded: rows, texts to encode and bytes, on gRPC and REST alike."""
import json
import socket
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tf_profiles.devserver.grpc_server import PredictionServicer, RequestLimits, start_server
from tf_profiles.devserver.registry import ModelRegistry, ServedModel
from tf_profiles.devserver.rest import start_rest_server
from tf_profiles.serving.tensors import GRPC_OPTIONS, predict_request

LIMITS = RequestLimits(max_rows=50, max_texts=3, max_bytes=20_000)


@pytest.fixture(scope="module")
def limited(exported):
    registry = ModelRegistry([ServedModel("tiny", exported[0])])
    grpc_server, port = start_server(registry, port=0, poll_seconds=None, limits=LIMITS)
    rest, rest_port = start_rest_server(registry, port=0, limits=LIMITS)
    yield f"127.0.0.1:{port}", rest_port, registry
    rest.shutdown()
    rest.server_close()
    grpc_server.stop(grace=None)


def _predict(target, signature, inputs):
    with grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            stub.Predict(predict_request("tiny", signature, inputs), timeout=60)
        except grpc.RpcError as error:
            return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def _ids(count):
    return np.array([f"u{i}".encode() for i in range(count)], dtype=object)


def test_rows_texts_and_bytes_beyond_the_limits_are_refused_naming_them(limited):
    target = limited[0]
    assert _predict(target, "lookup_profiles", {"user_id": _ids(50)})[0] == grpc.StatusCode.OK
    code, details = _predict(target, "lookup_profiles", {"user_id": _ids(51)})
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "at most 50" in details
    texts = {"item_id": _ids(4), "item_text": np.array([b"drama", b"", b"comedy", b"war"])}
    assert _predict(target, "item_embedding", texts)[0] == grpc.StatusCode.OK  # 3 texts
    texts["item_text"][1] = b"noir"
    code, details = _predict(target, "item_embedding", texts)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "at most 3" in details
    code, _ = _predict(target, "text_sentiment", {"text": np.array([b"x" * 30_000])})
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED  # 30 KB over 20,000 bytes


def test_no_work_is_done_for_a_client_that_gave_up(limited):
    class GaveUp:
        def time_remaining(self):
            return 0.0

        def abort(self, code, details):
            raise RuntimeError(code, details)

    servicer = PredictionServicer(limited[2], LIMITS)
    with pytest.raises(RuntimeError) as raised:
        servicer.run(predict_request("tiny", "lookup_profiles", {"user_id": _ids(1)}),
                     GaveUp())
    assert raised.value.args[0] == grpc.StatusCode.DEADLINE_EXCEEDED


def _raw_http(port, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):  # the server closes: framing is unknown
            answer += chunk
    return answer


@pytest.mark.parametrize("headers, status, words", [
    (b"Content-Length: 999999999999\r\n", b"413", b"over this server's 20000"),
    (b"Content-Length: abc\r\n", b"400", b"not a byte count"),
    (b"Content-Length: -1\r\n", b"400", b"not a byte count"),
    (b"Transfer-Encoding: chunked\r\n", b"411", b"send a Content-Length"),
])
def test_a_rest_body_is_checked_before_it_is_read(limited, headers, status, words):
    answer = _raw_http(limited[1], b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n"
                       + headers + b"\r\n")
    first, _, body = answer.partition(b"\r\n\r\n")
    assert first.split()[1] == status and words in body
    assert "error" in json.loads(body)


def test_a_stalled_rest_client_is_dropped(exported):
    registry = ModelRegistry([ServedModel("tiny", exported[0])])
    rest, port = start_rest_server(registry, port=0, limits=RequestLimits(read_seconds=1.0))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            assert connection.recv(65536) == b""  # closed by the server, no answer
            assert time.monotonic() - started < 10
    finally:
        rest.shutdown()
        rest.server_close()
