import subprocess
import sys

import pytest


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.slow
def test_fresh_interpreter_gets_keras_2():
    result = _run("import tf_profiles, tensorflow as tf, tensorflow_recommenders as tfrs;"
                  "print(tf.keras.__name__)")
    assert result.returncode == 0, result.stderr
    assert "tf_keras" in result.stdout


@pytest.mark.slow
def test_tensorflow_imported_first_but_keras_untouched_still_works():
    result = _run("import tensorflow as tf, tf_profiles; print(tf.keras.__name__)")
    assert result.returncode == 0, result.stderr
    assert "tf_keras" in result.stdout


@pytest.mark.slow
def test_keras_3_already_active_fails_with_instructions():
    result = _run("import tensorflow as tf; tf.keras.layers; import tf_profiles")
    assert result.returncode != 0
    assert "KerasVersionError" in result.stderr
    assert "TF_USE_LEGACY_KERAS=1" in result.stderr
