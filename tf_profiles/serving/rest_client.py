"""TF Serving's REST API as a stub with the gRPC stubs' methods.

``RestStub.Predict``, ``GetModelMetadata`` and ``GetModelStatus`` take and
return the protos that the gRPC stubs do, so ``ServingClient`` batches,
retries and decodes alike over either protocol. A failed call raises
``RestError``, a ``grpc.RpcError`` whose ``code()`` is the gRPC code the HTTP
status stands for: callers handle one kind of error.
"""
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     predict_pb2)

from tf_profiles.features.spec import SERVING_DEFAULT

# TF Serving's ToHTTPStatusCode (tensorflow_serving/model_servers/http_server.cc).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500, grpc.StatusCode.UNAUTHENTICATED: 401}
# Several codes share a status (400: INVALID_ARGUMENT, FAILED_PRECONDITION,
# OUT_OF_RANGE); the client reads back the first of them.
_GRPC_CODE = {}
for _code, _status in HTTP_STATUS.items():
    _GRPC_CODE.setdefault(_status, _code)


class RestError(grpc.RpcError):
    """A REST API error: a gRPC code and TF Serving's message (``{"error": ...}``)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self._code, self._message = code, message

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message


def model_url(target: str, model_spec: model_pb2.ModelSpec) -> str:
    """``http://target/v1/models/NAME[/versions/N | /labels/L]`` for a ModelSpec."""
    url = f"http://{target}/v1/models/{urllib.parse.quote(model_spec.name, safe='')}"
    if model_spec.HasField("version"):
        return f"{url}/versions/{model_spec.version.value}"
    if model_spec.version_label:
        return f"{url}/labels/{urllib.parse.quote(model_spec.version_label, safe='')}"
    return url


class RestStub:
    """Calls one REST API endpoint ("host:8501") as the PredictionService and ModelService stubs."""

    def __init__(self, target: str):
        self.target = target
        self._signatures: Dict[str, object] = {}  # model URL → SignatureDefMap

    def _send(self, url: str, body=None, timeout=None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                message = text or error.reason
            raise RestError(_GRPC_CODE.get(error.code, grpc.StatusCode.UNKNOWN),
                            f"{message} ({url})") from None
        except urllib.error.URLError as error:  # as gRPC: refused = UNAVAILABLE (retried)
            code = (grpc.StatusCode.DEADLINE_EXCEEDED if isinstance(error.reason, TimeoutError)
                    else grpc.StatusCode.UNAVAILABLE)
            raise RestError(code, f"{url}: {error.reason}") from None
        except TimeoutError as error:
            raise RestError(grpc.StatusCode.DEADLINE_EXCEEDED, f"{url}: {error}") from None

    def GetModelStatus(self, request, timeout=None):
        answer = self._send(model_url(self.target, request.model_spec), timeout=timeout)
        return json_format.ParseDict(answer, get_model_status_pb2.GetModelStatusResponse())

    def GetModelMetadata(self, request, timeout=None):
        answer = self._send(model_url(self.target, request.model_spec) + "/metadata",
                            timeout=timeout)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        json_format.ParseDict(answer["model_spec"], response.model_spec)
        response.metadata["signature_def"].Pack(json_format.ParseDict(
            answer["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap()))
        return response

    def _signature_def(self, model_spec, timeout):
        # JSON numbers and strings do not say float32 or int64: the answer's
        # dtypes come from the signature, asked once per model URL.
        url = model_url(self.target, model_spec)
        if url not in self._signatures:
            request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=model_spec)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            self.GetModelMetadata(request, timeout).metadata["signature_def"].Unpack(signature_map)
            self._signatures[url] = signature_map
        name = model_spec.signature_name or SERVING_DEFAULT
        return self._signatures[url].signature_def[name]

    def Predict(self, request, timeout=None):
        """Sends the request's inputs in the columnar format ("inputs" → "outputs")."""
        body = {"signature_name": request.model_spec.signature_name,
                "inputs": {name: _json_value(proto) for name, proto in request.inputs.items()}}
        answer = self._send(model_url(self.target, request.model_spec) + ":predict", body,
                            timeout)
        expected = self._signature_def(request.model_spec, timeout).outputs
        outputs = answer["outputs"]
        if len(expected) == 1:  # a single output comes without its name
            outputs = {next(iter(expected)): outputs}
        response = predict_pb2.PredictResponse(model_spec=request.model_spec)
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(_tensor_proto(value, expected[name].dtype))
        return response


def _json_value(proto: tensor_pb2.TensorProto):
    """A TensorProto as JSON: nested lists; strings as text, or {"b64": ...} if not UTF-8."""
    if proto.dtype != types_pb2.DT_STRING:
        return tf.make_ndarray(proto).tolist()
    shape = [d.size for d in proto.tensor_shape.dim]
    values = np.empty(len(proto.string_val), dtype=object)
    for index, value in enumerate(proto.string_val):
        try:
            values[index] = value.decode()
        except UnicodeDecodeError:
            values[index] = {"b64": base64.b64encode(value).decode()}
    return values.reshape(shape).tolist()


def _tensor_proto(value, dtype) -> tensor_pb2.TensorProto:
    """JSON output values (TF Serving's encoding) as a TensorProto of ``dtype``."""
    if dtype != types_pb2.DT_STRING:
        return tf.make_tensor_proto(np.asarray(value, tf.dtypes.as_dtype(dtype).as_numpy_dtype))
    array = np.array(value, dtype=object)
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    proto.string_val.extend(
        base64.b64decode(v["b64"]) if isinstance(v, dict) else v.encode()
        for v in array.ravel())
    return proto
