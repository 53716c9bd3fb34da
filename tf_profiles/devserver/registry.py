"""The local server's models: model_config entries, their versions, loading and polling.

Production uses the TensorFlow Serving model server (see serving/README.md).
Its binary is not on PyPI or in Debian, so the development server (this
package), built on grpcio and the servicer base classes that
tensorflow-serving-api ships, serves the same SavedModels from the same base
path with the same answers and status codes, so that the export and the
client can be tested end to end. This module decides which versions are
loaded and resolves a request's ModelSpec to one of them.
"""
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import grpc
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModels use)
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.config import model_server_config_pb2

from tf_profiles.features.spec import SERVING_DEFAULT
from tf_profiles.serving import tensors, warmup

log = logging.getLogger(__name__)


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
    # version → the folder's state when its load failed: retried (and logged)
    # only once the folder changes, e.g. while it is still being copied.
    failed: Dict[int, tuple] = field(default_factory=dict)

    def wanted(self, available: List[int]) -> List[int]:
        if self.policy == "specific":
            return [v for v in available if v in self.specific]
        if self.policy == "all":
            return available
        return sorted(available)[-self.num_latest:]


def _available(base_path: Path) -> Optional[List[int]]:
    """Version folders holding a saved_model.pb; None when the base path cannot
    be listed (moved away for a moment: what is loaded keeps serving)."""
    try:
        # isascii: str.isdigit() also accepts "²", which int() refuses.
        return sorted(int(p.name) for p in base_path.iterdir()
                      if p.name.isascii() and p.name.isdigit()
                      and (p / "saved_model.pb").is_file())
    except OSError:
        return None


def _folder_state(path: Path) -> tuple:
    """Every file's (name, size, mtime): changes while a version is written."""
    try:
        return tuple(sorted((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns)
                            for f in path.rglob("*") if f.is_file()))
    except OSError:
        return ()


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
        """Loads newly wanted versions; unloads the others only once a wanted one
        serves (TF Serving's availability-preserving policy): a version that
        fails to load, or a base path gone for a moment, never empties a model."""
        for model in self.models.values():
            available = _available(model.base_path)
            if available is None:
                continue
            wanted = model.wanted(available)
            for version in wanted:
                if version not in model.versions:
                    self._try_load(model, version)
            with self._lock:
                if any(version in model.versions for version in wanted):
                    for version in [v for v in model.versions if v not in wanted]:
                        del model.versions[version]
                        log.info("unloaded %s version %d", model.name, version)

    def _try_load(self, model: ServedModel, version: int):
        path = model.base_path / str(version)
        state = _folder_state(path)
        if model.failed.get(version) == state:
            return  # failed as it is now: wait for the folder to change
        try:
            loaded = _load_version(path, version)
        except Exception as error:  # a broken export must not take the server down
            model.failed[version] = state
            log.error("cannot load %s version %d (retried when %s changes): %s",
                      model.name, version, path, error)
            return
        model.failed.pop(version, None)
        with self._lock:
            model.versions[version] = loaded
        log.info("serving %s version %d", model.name, version)

    def poll(self, interval_seconds: float):
        def loop():
            while not self._stop.wait(interval_seconds):
                try:
                    self.refresh()
                except Exception:  # one bad cycle must not stop new versions for good
                    log.exception("version poll failed; polling goes on")

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
