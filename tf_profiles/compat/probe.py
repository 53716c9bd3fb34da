"""What runs inside the TensorFlow an export is checked against.

A standalone script (standard library, NumPy and TensorFlow only, never
tf_profiles): ``tf_profiles.compat.check`` runs it with the interpreter of
a virtualenv that holds just ``tensorflow==X`` and TF Text X, and imports it
for the installed TensorFlow.

    python probe.py opdefs OUT.json
    python probe.py replay EXPORT_DIR REQUESTS.json OUT.json

TF Text is loaded as its kernel libraries only (``tf.load_op_library`` on the
wheel's .so files), never as the ``tensorflow_text`` Python package: the
stock TF Serving binary links those kernels (TF Text's ``ops_lib``: every op
library of the wheel's python/ops and python/metrics) and has no Python.
"""
import base64
import glob
import importlib.util
import json
import os
import sys
import time

import tensorflow as tf
from tensorflow.core.framework import op_def_pb2, tensor_pb2
from tensorflow.python.client import pywrap_tf_session as c_api


def text_op_libraries():
    """The TF Text wheel's op libraries, found without importing its Python package."""
    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None:
        raise RuntimeError(f"tensorflow-text is not installed for {sys.executable}")
    root = spec.submodule_search_locations[0]
    libraries = sorted(glob.glob(os.path.join(root, "python", "ops", "_*.so"))
                       + glob.glob(os.path.join(root, "python", "metrics", "_*.so")))
    if not libraries:
        raise RuntimeError(f"{root}: no op libraries (python/ops/_*.so) in tensorflow-text")
    return libraries


def load_text_ops():
    """Loads every TF Text op library; returns {op name: OpDef} of the ops they register."""
    ops = {}
    for path in text_op_libraries():
        # What tf.load_op_library does, less the Python wrappers it generates;
        # TensorFlow keeps each loaded library with the OpList it registered,
        # so this also names the ops of one loaded before (`import tensorflow_text`).
        handle = c_api.TF_LoadLibrary(path)
        try:
            ops.update((op.name, op) for op in
                       op_def_pb2.OpList.FromString(c_api.TF_GetOpList(handle)).op)
        finally:
            c_api.TF_DeleteLibraryHandle(handle)
    return ops


def registered_ops():
    """{op name: OpDef} of every op this process has registered."""
    buffer = c_api.TF_GetAllOpList()
    try:
        ops = op_def_pb2.OpList.FromString(c_api.TF_GetBuffer(buffer)).op
    finally:
        c_api.TF_DeleteBuffer(buffer)
    return {op.name: op for op in ops}


def attr_defaults(op_def):
    """{attribute: whether the OpDef gives it a default}."""
    return {attr.name: attr.HasField("default_value") for attr in op_def.attr}


def op_defs():
    """{"tensorflow": version, "core": {op: {attr: has default}}, "text": {...}}.

    Core ops are those registered apart from TF Text's (the process loads no
    other op library).
    """
    text = load_text_ops()
    core = {name: op for name, op in registered_ops().items() if name not in text}
    return {"tensorflow": tf.__version__,
            "core": {name: attr_defaults(op) for name, op in core.items()},
            "text": {name: attr_defaults(op) for name, op in text.items()}}


def encode(tensor):
    return base64.b64encode(tf.make_tensor_proto(tensor).SerializeToString()).decode()


def decode(text):
    return tf.make_ndarray(tensor_pb2.TensorProto.FromString(base64.b64decode(text)))


def replay(export_dir, requests):
    """Loads ``export_dir`` and answers ``requests`` ([{"signature", "inputs"}],
    tensors as base64 TensorProtos); a failing request records its error."""
    started = time.perf_counter()
    text_ops = load_text_ops()
    try:
        loaded = tf.saved_model.load(export_dir)
    except Exception as error:  # noqa: BLE001  (any load failure is the verdict)
        return {"tensorflow": tf.__version__, "error": f"{type(error).__name__}: {error}"}
    loaded_seconds = time.perf_counter() - started
    answers = []
    for request in requests:
        answer = {"signature": request["signature"]}
        try:
            outputs = loaded.signatures[request["signature"]](
                **{name: tf.constant(decode(value)) for name, value in request["inputs"].items()})
            answer["outputs"] = {name: encode(value) for name, value in outputs.items()}
        except Exception as error:  # noqa: BLE001  (reported per signature)
            answer["error"] = f"{type(error).__name__}: {error}"
        answers.append(answer)
    return {"tensorflow": tf.__version__, "text_ops": len(text_ops),
            "load_seconds": round(loaded_seconds, 2),
            "replay_seconds": round(time.perf_counter() - started - loaded_seconds, 2),
            "answers": answers}


def main(argv):
    if argv[:1] == ["opdefs"] and len(argv) == 2:
        result = op_defs()
    elif argv[:1] == ["replay"] and len(argv) == 4:
        with open(argv[2]) as file:
            result = replay(argv[1], json.load(file))
    else:
        sys.exit(__doc__)
    with open(argv[-1], "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(sys.argv[1:])
