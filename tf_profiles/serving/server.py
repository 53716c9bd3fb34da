"""A PredictionService-compatible gRPC server for development and tests.

Production uses the TensorFlow Serving model server (see serving/README.md).
Its binary is not on PyPI or in Debian, so this server, built on grpcio and
the servicer base classes that tensorflow-serving-api ships, serves the same
SavedModels from the same base path with the same answers and status codes,
so that the export and the client can be tested end to end.
"""
import logging
import math
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import grpc
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModels use)
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from tf_profiles.features.spec import SERVING_DEFAULT
from tf_profiles.serving import tensors, warmup

log = logging.getLogger(__name__)

# A TensorProto may give fewer values than its shape holds (TensorFlow repeats
# the last one), so a few bytes can ask for 2**40 strings: parsing that spends
# ~10 s in the allocator before failing. Far above any real request
# (100,000 ids is 1/40 of it), checked before parsing.
MAX_INPUT_ELEMENTS = 1 << 22
# TensorFlow's error codes are gRPC's: an op error keeps its code, as in TF Serving.
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


@dataclass
class LoadedVersion:
    version: int
    signatures: Dict[str, object]  # name → concrete function
    signature_defs: Dict[str, object]  # name → SignatureDef proto
    module: object  # keeps the loaded SavedModel (and its tables) alive


@dataclass
class ServedModel:
    """One model_config entry: its versions as the version policy selects them."""
    name: str
    base_path: Path
    policy: str = "latest"  # "latest", "specific" or "all"
    num_latest: int = 1
    specific: List[int] = field(default_factory=list)
    labels: Dict[str, int] = field(default_factory=dict)
    versions: Dict[int, LoadedVersion] = field(default_factory=dict)

    def wanted(self, available: List[int]) -> List[int]:
        if self.policy == "specific":
            return [v for v in available if v in self.specific]
        if self.policy == "all":
            return available
        return sorted(available)[-self.num_latest:]


def _load_version(path: Path, version: int) -> LoadedVersion:
    module = tf.saved_model.load(str(path))
    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    signatures = {name: module.signatures[name] for name in module.signatures}
    # The proto also lists "__saved_model_init_op", which is not servable.
    defs = {name: definition for name, definition in proto.meta_graphs[0].signature_def.items()
            if name in signatures}
    _warm_up(path, signatures)
    return LoadedVersion(version, signatures, defs, module)


def _warm_up(path: Path, signatures):
    # TF Serving's --enable_model_warmup: replays the export's warmup requests
    # before the version is served. A signature's first call builds its
    # runtime state (~1 s here), and under load many first calls at once
    # stalled every client for seconds (see docs/benchmarks/serving_load.md).
    records = path / "assets.extra" / warmup.WARMUP_FILE
    if not records.is_file():
        return
    for record in warmup.read_warmup(records):
        request = record.predict_log.request
        name = request.model_spec.signature_name or SERVING_DEFAULT
        if name in signatures:
            signatures[name](**{key: tensors.parse_tensor(proto)
                                for key, proto in request.inputs.items()})


class ModelRegistry:
    """Loads versions from base paths and picks up new ones while running."""

    def __init__(self, models: List[ServedModel]):
        self.models = {model.name: model for model in models}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @classmethod
    def from_config_file(cls, path) -> "ModelRegistry":
        """Reads a TF Serving models.config (text ModelServerConfig)."""
        config = text_format.Parse(Path(path).read_text(),
                                   model_server_config_pb2.ModelServerConfig())
        models = []
        for entry in config.model_config_list.config:
            policy = entry.model_version_policy
            kind = policy.WhichOneof("policy_choice") or "latest"
            models.append(ServedModel(
                entry.name, Path(entry.base_path), kind,
                num_latest=policy.latest.num_versions or 1,
                specific=list(policy.specific.versions), labels=dict(entry.version_labels)))
        return cls(models)

    def refresh(self):
        """Loads newly wanted versions, then drops unwanted ones (no gap in service)."""
        for model in self.models.values():
            available = sorted(int(p.name) for p in model.base_path.glob("*")
                               if p.name.isdigit() and (p / "saved_model.pb").is_file())
            wanted = model.wanted(available)
            for version in wanted:
                if version not in model.versions:
                    try:
                        loaded = _load_version(model.base_path / str(version), version)
                    except Exception:  # a broken export must not take the server down
                        log.exception("cannot load %s version %d", model.name, version)
                        continue
                    with self._lock:
                        model.versions[version] = loaded
                    log.info("serving %s version %d", model.name, version)
            with self._lock:
                for version in [v for v in model.versions if v not in wanted]:
                    del model.versions[version]

    def poll(self, interval_seconds: float):
        def loop():
            while not self._stop.wait(interval_seconds):
                self.refresh()

        threading.Thread(target=loop, daemon=True, name="version-poller").start()

    def stop(self):
        self._stop.set()

    def resolve(self, model_spec, context) -> LoadedVersion:
        """The version a ModelSpec names; aborts with TF Serving's status otherwise."""
        if not model_spec.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
        model = self.models.get(model_spec.name)
        with self._lock:
            versions = dict(model.versions) if model else {}
        if model_spec.HasField("version"):
            wanted, description = model_spec.version.value, (
                f"Specific({model_spec.name}, {model_spec.version.value})")
        elif model_spec.version_label:
            wanted = model.labels.get(model_spec.version_label) if model else None
            if model and wanted is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"Unrecognized servable version label: {model_spec.version_label}")
            description = f"Specific({model_spec.name}, label {model_spec.version_label})"
        else:
            wanted = max(versions, default=None)
            description = f"Latest({model_spec.name})"
        if wanted not in versions:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Servable not found for request: {description}")
        return versions[wanted]


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
    def __init__(self, registry: ModelRegistry):
        self.registry = registry

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
                 max_workers: int = 16, poll_seconds: Optional[float] = 1.0):
    """Starts serving in background threads; returns (grpc server, bound port)."""
    registry.refresh()
    if poll_seconds:
        registry.poll(poll_seconds)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                         options=tensors.GRPC_OPTIONS)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(registry), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(registry), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound


def serve_forever(registry: ModelRegistry, port: int, host: str, poll_seconds: float,
                  rest_api_port: int = 0):
    """gRPC on ``port`` and, unless ``rest_api_port`` is 0, the REST API beside it."""
    from tf_profiles.serving.rest import start_rest_server  # rest.py builds on this module

    server, bound = start_server(registry, port, host, poll_seconds=poll_seconds)
    rest, rest_bound = start_rest_server(registry, rest_api_port, host) if rest_api_port else (
        None, None)
    served = {name: sorted(m.versions) for name, m in registry.models.items()}
    print(f"serving {served} on {host}:{bound}"
          + (f", REST API on {host}:{rest_bound}" if rest else "") + " (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        if rest:
            rest.shutdown()
        server.stop(grace=2)
        registry.stop()
