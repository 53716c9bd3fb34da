"""The one place that decides how TensorFlow is loaded: on which Keras, and how loudly.

TensorFlow Recommenders 0.7.7 raises ImportError under Keras 3, so the whole
package uses tf-keras (Keras 2). TensorFlow reads ``TF_USE_LEGACY_KERAS`` once,
on its first import, which is why this module must be imported before
anything imports TensorFlow (``tf_profiles/__init__.py`` imports it first).
"""
import os
import sys
import warnings


class KerasVersionError(ImportError):
    """TensorFlow was already imported with Keras 3 active."""


def _tensorflow_already_uses_keras3() -> bool:
    # TensorFlow resolves ``tf.keras`` lazily, on first attribute access, so
    # setting the variable after ``import tensorflow`` still works as long as
    # nobody has touched ``tf.keras`` yet. Read the loader's state without
    # triggering it.
    tensorflow = sys.modules.get("tensorflow")
    keras = vars(tensorflow).get("keras") if tensorflow is not None else None
    if keras is None:
        return False
    loader_state = vars(keras)
    if loader_state.get("_tfll_initialized") is False:
        return False  # still lazy: the variable below decides
    if loader_state.get("_tfll_keras_version"):
        return loader_state["_tfll_keras_version"] == "keras_3"
    # Once resolved, the loader replaces itself with the module it loaded:
    # "keras._tf_keras.keras" is Keras 3, "tf_keras.api._v2.keras" is Keras 2.
    return getattr(keras, "__name__", "").startswith("keras.")


if _tensorflow_already_uses_keras3():
    raise KerasVersionError(
        "tf_profiles needs Keras 2 (tf-keras), but TensorFlow was imported "
        "before tf_profiles with Keras 3 active. Import tf_profiles before "
        "tensorflow, or set the environment variable TF_USE_LEGACY_KERAS=1 "
        "before starting Python."
    )

os.environ["TF_USE_LEGACY_KERAS"] = "1"


def load_tensorflow_quietly():
    """Imports TensorFlow for a command line that shows only its own output.

    TensorFlow's start-up lines (oneDNN notes, CPU features, CUDA stubs) are
    logged before absl's logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL``
    does not hold them back: stderr (file descriptor 2) points at /dev/null
    while TensorFlow loads. Later C++ lines (a failed cuInit on a machine
    without a GPU) obey level 3. Devices are not created here: a multi-worker
    strategy must configure them first. Its Python loggers are set to errors
    only, and transformers' notices and warnings are hidden. A Python
    exception still raises normally.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # transformers' notice that its TensorFlow classes are deprecated (they are
    # what this package runs on, pinned) and its own deprecation warnings.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", module="transformers")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    import absl.logging

    tf.get_logger().setLevel("ERROR")
    absl.logging.set_verbosity(absl.logging.ERROR)
