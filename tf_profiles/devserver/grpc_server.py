"""TF Serving's gRPC PredictionService and ModelService over a ModelRegistry.

Inputs are checked as TF Serving checks them (aliases, dtypes, shapes, size)
and errors carry TF Serving's status codes and words.
"""
import dataclasses
import math
from concurrent import futures
from typing import Optional

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from tf_profiles.devserver.registry import ModelRegistry
from tf_profiles.features import spec
from tf_profiles.features.spec import SERVING_DEFAULT
from tf_profiles.serving import tensors

# A TensorProto may give fewer values than its shape holds (TensorFlow repeats
# the last one), so a few bytes can ask for 2**40 strings: parsing that spends
# ~10 s in the allocator before failing. Far above any real request
# (100,000 ids is 1/40 of it), checked before parsing.
MAX_INPUT_ELEMENTS = 1 << 22
# TensorFlow's error codes are gRPC's: an op error keeps its code, as in TF Serving.
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}



@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """What one request may ask of the server (``tf-profiles serve`` flags).

    Beyond a limit the answer is RESOURCE_EXHAUSTED naming it, before any
    work: a request's cost grows with its rows and, far more, with the texts
    the BERT encoder must read (3,000 long texts took 4 GB).

    Attributes:
      max_rows: rows of any input (ids, histories, texts) per request.
      max_texts: non-empty texts per request (``user_text``, ``item_text``,
        ``text``): each one is encoded.
      max_bytes: one request's size (gRPC message, REST body).
      read_seconds: how long the REST API waits for a client's next bytes
        before it closes the connection (a stalled client holds a thread).
    """
    max_rows: int = 10_000
    max_texts: int = 256
    max_bytes: int = 16 << 20
    read_seconds: float = 30.0


# The inputs whose non-empty values go through the text encoder.
_TEXT_INPUTS = (spec.USER_TEXT, spec.ITEM_TEXT, spec.TEXT)


def _check_limits(inputs: dict, limits: RequestLimits, context):
    for name, tensor in inputs.items():
        rows = int(tensor.shape[0]) if tensor.shape.rank else 1
        if rows > limits.max_rows:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"input {name} has {rows} rows; this server takes at most "
                          f"{limits.max_rows} per request (serve --max-request-rows): "
                          "send them in several requests")
    texts = sum(int(tf.math.count_nonzero(tf.strings.length(inputs[name])))
                for name in _TEXT_INPUTS if name in inputs)
    if texts > limits.max_texts:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                      f"{texts} texts to encode; this server encodes at most "
                      f"{limits.max_texts} per request (serve --max-request-texts): "
                      "send them in several requests")


def _check_inputs(request, signature_def, context):
    expected = signature_def.inputs
    unknown = sorted(set(request.inputs) - set(expected))
    missing = sorted(set(expected) - set(request.inputs))
    if unknown or missing:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, (
            f"input tensor alias not found in signature: {', '.join(unknown)}. " if unknown
            else f"Missing input(s): {', '.join(missing)}. ")
            + f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.")
    parsed = {}
    for name, proto in request.inputs.items():
        spec = expected[name]
        try:
            dtype = tf.dtypes.as_dtype(proto.dtype)
        except TypeError:  # DT_INVALID or a value the enum lacks: TF Serving's words
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"tensor parsing error: {name}")
        if proto.dtype != spec.dtype:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, (
                f"Expects arg {name} to be {tf.dtypes.as_dtype(spec.dtype).name} but "
                f"{dtype.name} is provided"))
        shape = [d.size for d in proto.tensor_shape.dim]
        wanted = [d.size for d in spec.tensor_shape.dim]
        if len(shape) != len(wanted) or any(w not in (-1, s) for w, s in zip(wanted, shape)):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"input {name} has shape {shape}, the signature expects "
                          f"{['?' if w == -1 else w for w in wanted]}")
        elements = math.prod(max(size, 0) for size in shape)
        if elements > MAX_INPUT_ELEMENTS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"input {name} has shape {shape}: {elements} elements, more than "
                          f"the {MAX_INPUT_ELEMENTS} one input may hold")
        try:
            parsed[name] = tensors.parse_tensor(proto)
        except tf.errors.InvalidArgumentError as error:  # malformed TensorProto content
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input {name}: {error.message}")
    return parsed


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, registry: ModelRegistry, limits: RequestLimits = RequestLimits()):
        self.registry = registry
        self.limits = limits

    def Predict(self, request, context):
        served, name, outputs = self.run(request, context)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = served.version
        response.model_spec.signature_name = name
        for key, tensor in outputs.items():
            tensors.write_tensor(tensor, response.outputs[key])
        return response

    def run(self, request, context):
        """Checks and runs a PredictRequest: (version, signature name, {alias: tf.Tensor}).

        The gRPC and the REST API (rest.py) both answer through here, so they
        check inputs and report errors alike.
        """
        served = self.registry.resolve(request.model_spec, context)
        name = request.model_spec.signature_name or SERVING_DEFAULT
        if name not in served.signatures:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f'Serving signature key "{name}" not found.')
        inputs = _check_inputs(request, served.signature_defs[name], context)
        _check_limits(inputs, self.limits, context)
        # A client that gave up gets no work done for it (the run itself
        # cannot be stopped halfway; the limits bound how long it takes).
        remaining = getattr(context, "time_remaining", lambda: None)()
        if remaining is not None and remaining <= 0:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        try:
            outputs = served.signatures[name](**inputs)
        except tf.errors.OpError as error:  # bad values (INVALID_ARGUMENT), out of memory, ...
            context.abort(_GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN),
                          error.message)
        wanted = set(request.output_filter) or set(outputs)
        unknown = sorted(wanted - set(outputs))
        if unknown:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"output tensor alias not found in signature: {', '.join(unknown)}")
        return served, name, {key: outputs[key] for key in sorted(wanted)}

    def GetModelMetadata(self, request, context):
        served = self.registry.resolve(request.model_spec, context)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "Metadata field signature_def is the only one supported")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, definition in served.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(definition)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = served.version
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def GetModelStatus(self, request, context):
        model = self.registry.models.get(request.model_spec.name)
        versions = sorted(model.versions) if model else []
        # As in TF Serving's get_model_status_impl.cc, a version label is not
        # resolved: the status of every version comes back.
        if request.model_spec.HasField("version"):
            wanted = request.model_spec.version.value
            versions = [v for v in versions if v == wanted]
            if not versions:
                context.abort(grpc.StatusCode.NOT_FOUND,
                              f"Could not find version {wanted} of model {request.model_spec.name}")
        if not versions:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Could not find any versions of model {request.model_spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in versions:
            status = response.model_version_status.add()
            status.version = version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
            status.status.SetInParent()  # TF Serving always sets it: error_code OK
        return response


def start_server(registry: ModelRegistry, port: int = 8500, host: str = "127.0.0.1",
                 max_workers: int = 16, poll_seconds: Optional[float] = 1.0,
                 limits: RequestLimits = RequestLimits()):
    """Starts serving in background threads; returns (grpc server, bound port)."""
    registry.refresh()
    if poll_seconds:
        registry.poll(poll_seconds)
    # gRPC itself refuses a larger request (RESOURCE_EXHAUSTED) before reading it.
    options = dict(tensors.GRPC_OPTIONS)
    options["grpc.max_receive_message_length"] = limits.max_bytes
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                         options=list(options.items()))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(registry, limits), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(registry), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound
