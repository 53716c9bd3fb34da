"""check-serving: ops and attributes against a TensorFlow's OpDefs, the warm-up
replay in a TensorFlow-only interpreter, and load_servable."""
import copy
import time

import numpy as np
import pytest
import tensorflow as tf

from tf_profiles import load_servable
from tf_profiles.cli import main
from tf_profiles.compat import check as compat
from tf_profiles.compat import env as compat_env
from tf_profiles.compat.check import (check_serving, op_defs, output_problems,
                                        require_servable, static_problems)
from tf_profiles.compat.probe import encode
from tf_profiles.compat.versions import matching_serving_version
from tf_profiles.features.spec import SIGNATURES

# The tokenizer's ops: stock TF Serving links them (TF Text's ops_lib).
TOKENIZER_OPS = {"FastBertNormalize", "FastWordpieceTokenizeWithOffsets", "CaseFoldUTF8",
                 "NormalizeUTF8", "RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"}


@pytest.fixture(scope="module")
def installed():
    return op_defs(tf.__version__)


@pytest.fixture(scope="module")
def python_op_export(tmp_path_factory):
    """A SavedModel whose signature runs a tf.py_function."""
    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return {"y": tf.py_function(lambda a: a * 2, [x], tf.float32)}

    module, path = Doubler(), tmp_path_factory.mktemp("py_function") / "1"
    tf.saved_model.save(module, str(path), signatures={"double": module.double})
    return path


def test_text_ops_are_those_of_the_tensorflow_text_wheel(installed):
    assert installed["tensorflow"] == tf.__version__
    assert TOKENIZER_OPS <= set(installed["text"])
    assert not set(installed["text"]) & set(installed["core"])
    assert {"MatMul", "StatefulPartitionedCall", "PyFunc"} <= set(installed["core"])


def test_the_tiny_export_passes_the_static_check(exported, installed, capsys):
    assert static_problems(exported[1], installed) == []
    assert main(["check-serving", str(exported[0]), "--static-only"]) == 0
    out = capsys.readouterr().out
    assert f"{exported[1]} (written by TensorFlow {tf.__version__})" in out
    assert "static: ok" in out


def test_a_python_op_fails_the_static_check(python_op_export, installed, capsys):
    problems = static_problems(python_op_export, installed)
    assert len(problems) == 1
    assert problems[0].startswith("signature double: op EagerPyFunc (function __inference_double_")
    assert problems[0].endswith("runs Python, which TF Serving does not have")
    assert main(["check-serving", str(python_op_export), "--static-only"]) == 1
    assert "op EagerPyFunc" in capsys.readouterr().out


def test_ops_and_attributes_an_older_tensorflow_lacks(exported, installed):
    older = copy.deepcopy(installed)
    older["tensorflow"] = "2.0.0"
    del older["text"]["CaseFoldUTF8"]
    del older["core"]["StatefulPartitionedCall"]["config_proto"]
    older["core"]["Identity"]["newer_attr"] = False  # required: no default
    problems = static_problems(exported[1], older)
    assert len(problems) == 3, problems
    missing, unknown, required = (next(p for p in problems if text in p) for text in (
        "op CaseFoldUTF8", "config_proto", "newer_attr"))
    # The tokenizer runs in the signatures that take text.
    assert missing.startswith("signatures item_embedding, serving_default, user_embedding: "
                              "op CaseFoldUTF8 (function ")
    assert missing.endswith("is not registered in TensorFlow 2.0.0 nor one of the TF Text "
                            "ops TF Serving links")
    # Every function call of the serving signatures (the tables are restored
    # with the variables, so the init op TF Serving runs at load calls none).
    # (This model has no sentiment head: its text_sentiment answers NaN and calls nothing.)
    calling = sorted(set(SIGNATURES) - {"text_sentiment"})
    assert unknown.startswith(f"signatures {', '.join(calling)}: "
                              "op StatefulPartitionedCall (") and unknown.endswith(
        "has attribute 'config_proto', unknown to TensorFlow 2.0.0's OpDef "
        "(the load fails: \"NodeDef mentions attribute config_proto\")")
    assert required.endswith("lacks attribute 'newer_attr', which TensorFlow 2.0.0 requires")


def test_output_comparison():
    expected = {"ids": encode(np.array([[b"a", b"b"]])), "scores": encode(np.array([[1.0, 0.5]],
                                                                                    np.float32))}
    assert output_problems(expected, dict(expected)) == []
    close = dict(expected, scores=encode(np.array([[1.0, 0.5 + 5e-6]], np.float32)))
    assert output_problems(expected, close) == []
    assert output_problems(expected, dict(expected, scores=encode(
        np.array([[1.0, 0.6]], np.float32)))) == ["output 'scores' differs by up to 0.1 (> 1e-05)"]
    assert output_problems(expected, dict(expected, ids=encode(np.array([[b"a", b"c"]])))) == [
        "output 'ids' differs"]
    assert output_problems(expected, {"ids": encode(np.array([b"a"]))}) == [
        "output 'scores' is missing", "output 'ids' is object[1], expected object[1, 2]"]


def test_an_older_serving_version_needs_the_check(exported, monkeypatch):
    checked = []
    monkeypatch.setattr(compat, "check_serving", lambda path, version, **_: checked.append(
        version) or [f"op Foo (graph, node 'foo') is not registered in TensorFlow {version}"])
    major, minor = (int(part) for part in tf.__version__.split(".")[:2])
    require_servable(exported[1], matching_serving_version())  # same release: no check
    require_servable(exported[1], f"{major}.{minor + 1}.0")
    assert checked == []
    older = f"{major}.{minor - 1}.0"
    with pytest.raises(ValueError, match=(
            rf"TF Serving {older} cannot serve an export written by TensorFlow "
            rf"{tf.__version__}: op Foo \(graph, node 'foo'\) is not registered")):
        require_servable(exported[1], older)
    assert checked == [older]


def test_load_servable_registers_the_tokenizer_ops_first(exported):
    loaded = load_servable(exported[1])
    assert set(loaded.signatures) == set(SIGNATURES)
    out = loaded.signatures["item_embedding"](item_id=tf.constant(["new"]),
                                              item_text=tf.constant(["star wars drama"]))
    assert np.isfinite(out["embedding"].numpy()).all()


@pytest.mark.slow  # the first run installs tensorflow + tensorflow-text into a virtualenv
def test_the_runtime_check_replays_the_warmup_in_a_tensorflow_only_interpreter(exported,
                                                                               capsys):
    started = time.perf_counter()
    assert check_serving(exported[1]) == []
    out = capsys.readouterr().out
    assert f"runtime: TensorFlow {tf.__version__} with" in out
    for signature in SIGNATURES:
        assert f"  {signature}: ok: " in out
    assert (compat_env.env_dir(tf.__version__) / compat_env.INSTALLED).exists()
    print(f"runtime check: {time.perf_counter() - started:.1f} s")
