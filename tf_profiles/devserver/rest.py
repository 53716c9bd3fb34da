"""TF Serving's REST API (port 8501) for the local development server.

Answers the URLs of tensorflow_serving/model_servers/http_rest_api_handler.cc
and http_rest_api_util.cc from the ModelRegistry that the gRPC side serves:

  GET  /v1/models/NAME[/versions/N | /labels/L]            model status
  GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   signature defs
  POST /v1/models/NAME[/versions/N | /labels/L]:predict    JSON tensors (json_tensor.py)

Status, metadata and predict run through the gRPC servicers of server.py, so
both APIs resolve versions, check inputs and word errors alike; an error
comes back as {"error": message} with TF Serving's HTTP status for its code.
"""
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     predict_pb2)

from tf_profiles.devserver import json_tensor
from tf_profiles.devserver.grpc_server import ModelServicer, PredictionServicer, RequestLimits
from tf_profiles.devserver.registry import ModelRegistry
from tf_profiles.features.spec import SERVING_DEFAULT
from tf_profiles.serving.rest_client import HTTP_STATUS, RestError

log = logging.getLogger(__name__)

# kPredictionApiGegex and kModelStatusApiRegex of http_rest_api_util.cc (RE2 FullMatch).
_PREDICT_PATH = re.compile(r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                           r":(classify|regress|predict)")
_MODEL_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|"
                         r"(?:/labels/([^/:]+)))?(?:/(metadata))?")
_JSON_OPTIONS = dict(preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


class _Context:
    """What server.py's checks call on a gRPC ServicerContext; abort raises a RestError here."""

    @staticmethod
    def abort(code: grpc.StatusCode, details: str):
        raise RestError(code, details)


_CONTEXT = _Context()


def _model_spec(match: re.Match) -> model_pb2.ModelSpec:
    """ParseModelInfo + FillModelSpecWithNameVersionAndLabel."""
    name, version, label = match.group(1, 2, 3)
    spec = model_pb2.ModelSpec(name=unquote(name or ""))
    if version:
        if int(version) >= 2 ** 63:
            raise RestError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"Failed to convert version: {version} to numeric.")
        spec.version.value = int(version)
    elif label:
        spec.version_label = unquote(label)
    return spec


class RestApi:
    """The REST API's answers (JSON objects) over one registry."""

    def __init__(self, registry: ModelRegistry, limits: RequestLimits = RequestLimits()):
        self.registry = registry
        self.limits = limits
        self.predictions = PredictionServicer(registry, limits)
        self.models = ModelServicer(registry)

    def answer(self, method: str, path: str, body: bytes) -> dict:
        """The JSON answer to a request; raises RestError with TF Serving's code and message."""
        if method == "POST" and (match := _PREDICT_PATH.fullmatch(path)):
            spec = _model_spec(match)
            if match.group(4) == "predict":
                return self.predict(spec, body)
            if match.group(4) in ("classify", "regress"):  # no such signatures are exported
                raise RestError(grpc.StatusCode.UNIMPLEMENTED,
                                f":{match.group(4)} is not served by tf-profiles serve")
        elif method == "GET" and (match := _MODEL_PATH.fullmatch(path)):
            spec = _model_spec(match)
            if not spec.name:
                raise RestError(grpc.StatusCode.INVALID_ARGUMENT, "Missing model name in request.")
            return self.metadata(spec) if match.group(4) == "metadata" else self.status(spec)
        raise RestError(grpc.StatusCode.INVALID_ARGUMENT, f"Malformed request: {method} {path}")

    def status(self, spec) -> dict:
        response = self.models.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec=spec), _CONTEXT)
        return json_format.MessageToDict(response, **_JSON_OPTIONS)

    def metadata(self, spec) -> dict:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=["signature_def"])
        response = self.predictions.GetModelMetadata(request, _CONTEXT)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        # The shape of http_rest_api_util.cc's ToJsonString(GetModelMetadataResponse).
        return {"model_spec": json_format.MessageToDict(response.model_spec, **_JSON_OPTIONS),
                "metadata": {"signature_def": json_format.MessageToDict(signature_map,
                                                                        **_JSON_OPTIONS)}}

    def predict(self, spec, body: bytes) -> dict:
        # ProcessPredictRequest's order: the JSON first, then the model and
        # the signature's inputs (GetInfoMap), then the Predict call itself.
        document = json_tensor.parse_request(body)
        request = predict_pb2.PredictRequest(model_spec=spec)
        request.model_spec.signature_name = json_tensor.signature_name(document)
        served = self.registry.resolve(request.model_spec, _CONTEXT)
        name = request.model_spec.signature_name or SERVING_DEFAULT
        if name not in served.signature_defs:
            raise RestError(grpc.StatusCode.INVALID_ARGUMENT,
                            f'Serving signature name: "{name}" not found in signature def')
        request_format = json_tensor.fill_inputs(document, served.signature_defs[name].inputs,
                                                 request.inputs)
        _, _, outputs = self.predictions.run(request, _CONTEXT)
        return json_tensor.response({k: v.numpy() for k, v in outputs.items()}, request_format)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as TF Serving's libevent server

    def setup(self):
        # A socket timeout: a client that stops sending (mid-headers, mid-body
        # or idle on a kept-alive connection) is dropped instead of holding
        # its thread and descriptor for good.
        self.timeout = self.server.api.limits.read_seconds
        super().setup()

    def do_GET(self):
        self._reply("GET")

    def do_POST(self):
        self._reply("POST")

    def _reply(self, method: str):
        path = urlsplit(self.path).path
        length = self._content_length()
        if length is None:
            return
        body = self.rfile.read(length)
        if not path.lower().startswith("/v1/"):  # TF Serving dispatches (?i)/v1/.* only;
            self.send_error(404)  # libevent answers the rest with its HTML 404 page
            return
        try:
            answer, status = self.server.api.answer(method, path, body), 200
        except RestError as error:
            answer, status = {"error": error.details()}, HTTP_STATUS[error.code()]
        except Exception as error:  # as gRPC answers UNKNOWN, rather than drop the connection
            log.exception("%s %s", method, path)
            answer, status = {"error": str(error)}, HTTP_STATUS[grpc.StatusCode.UNKNOWN]
        # Strings go out as the model's bytes (surrogateescape), as TF Serving writes them.
        self._send(status, json.dumps(answer, ensure_ascii=False).encode("utf-8",
                                                                         "surrogateescape"))

    def _content_length(self):
        """The body's announced size, checked before anything is read (None:
        answered already, and the connection closed: its framing is unknown)."""
        text = self.headers.get("Content-Length") or "0"
        limit = self.server.api.limits.max_bytes
        problem = None
        if self.headers.get("Transfer-Encoding"):
            problem = 411, "Transfer-Encoding is not supported: send a Content-Length"
        elif not text.isascii() or not text.isdigit():
            problem = 400, f"Content-Length {text[:40]!r} is not a byte count"
        elif int(text) > limit:
            problem = 413, (f"the body of {int(text)} bytes is over this server's "
                            f"{limit} per request (serve --max-request-bytes)")
        if problem is None:
            return int(text)
        self.close_connection = True
        self._send(problem[0], json.dumps({"error": problem[1]}).encode())
        return None

    def _send(self, status: int, payload: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # one line per request would flood stderr
        log.debug(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # clients that open a connection per request

    def __init__(self, address, api: RestApi):
        super().__init__(address, _Handler)
        self.api = api


def start_rest_server(registry: ModelRegistry, port: int = 8501, host: str = "127.0.0.1",
                      limits: RequestLimits = RequestLimits()):
    """Serves the REST API in a background thread; returns (server, bound port).

    Loads nothing itself: start_server (gRPC) refreshes and polls the
    registry. ``server.shutdown()`` stops it.
    """
    try:
        server = _Server((host, port), RestApi(registry, limits))
    except OSError as error:
        raise OSError(f"cannot listen on {host}:{port} for the REST API: {error}") from error
    threading.Thread(target=server.serve_forever, daemon=True, name="rest-api").start()
    return server, server.server_address[1]
