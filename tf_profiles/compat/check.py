"""Can TF Serving X serve an export? ``tf-profiles check-serving``.

TF Serving X is built on TensorFlow X and links TF Text X's kernels
(``ops_lib``, since 2.12), so both checks use TensorFlow X:

- static: every op of the SavedModel's graphs and function library is a core
  op of TensorFlow X or a TF Text op; every node attribute is known to X's
  OpDef (an attribute with a default that X lacks is the classic "NodeDef
  mentions attribute" load failure) and every attribute X requires is set;
  no Python op (PyFunc and kin: the server has no Python).
- runtime: another interpreter, from a virtualenv with only TensorFlow X and
  TF Text X (``compat.env``), loads TF Text's kernel libraries, loads the
  export, replays its warm-up requests and must answer as this environment
  does (numbers within 1e-5; strings, booleans and integers exactly).

The installed TensorFlow's OpDefs come from this process's op registry,
another version's from its virtualenv.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tf_profiles.compat import probe
from tf_profiles.compat.env import ensure_env, env_dir, run_probe
from tf_profiles.compat.versions import matching_serving_version, parse_version
from tf_profiles.errors import UserError
from tf_profiles.serving import warmup

PYTHON_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")
ATOL = 1e-5
OPDEFS_FILE = "opdefs.json"


def load_servable(path):
    """An export loaded with ``tf.saved_model.load``, TF Text's ops registered first.

    The graph tokenizes with TF Text ops (FastBertNormalize, CaseFoldUTF8, ...);
    without ``import tensorflow_text`` the load fails with "Op type not
    registered 'CaseFoldUTF8'".
    """
    # Imported here, not with tf_profiles: only loading an export needs it.
    import tensorflow_text  # noqa: F401
    return tf.saved_model.load(str(path))


def version_folder(path) -> Path:
    """``path`` if it holds saved_model.pb, else its newest integer subfolder that does.

    Raises:
      ValueError: neither.
    """
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = sorted((p for p in path.glob("*") if p.name.isdigit()
                       and (p / "saved_model.pb").exists()), key=lambda p: int(p.name))
    if not versions:
        raise UserError(f"{path}: no saved_model.pb here or in an integer version folder")
    return versions[-1]


# === Static: ops and attributes against TensorFlow X's OpDefs ===

def op_defs(version: str, cache_dir: Optional[Path] = None, log=print) -> dict:
    """``{"tensorflow": X, "core": {op: {attr: has default}}, "text": {...}}``.

    Reading the installed version's registry also loads TF Text's kernels
    into this process, as ``import tensorflow_text`` does.
    """
    if version == tf.__version__:
        return probe.op_defs()
    cached = env_dir(version, cache_dir) / OPDEFS_FILE
    if not cached.exists():
        python = ensure_env(version, cache_dir, log)
        cached.write_text(json.dumps(run_probe(python, "opdefs")))
    return json.loads(cached.read_text())


def _callees(node, library) -> List[str]:
    """The library functions ``node`` calls: by op name or through function attributes."""
    names = [node.op] if node.op in library else []
    for value in node.attr.values():
        names += [value.func.name] if value.HasField("func") else []
        names += [function.name for function in value.list.func]
    return names


def _signature_reach(meta_graph) -> Dict[str, set]:
    """{signature: the graph nodes and library functions its outputs run}, as
    ("graph", node name) and ("function", function name)."""
    library = {function.signature.name: function
               for function in meta_graph.graph_def.library.function}
    graph = {node.name: node for node in meta_graph.graph_def.node}
    reach = {}
    for name, signature in meta_graph.signature_def.items():
        reached = set()
        pending = [("graph", tensor.name.split(":")[0]) for tensor in signature.outputs.values()]
        while pending:
            place = pending.pop()
            kind, key = place
            if place in reached or key not in (graph if kind == "graph" else library):
                continue
            reached.add(place)
            if kind == "graph":
                pending += [("graph", i.lstrip("^").split(":")[0]) for i in graph[key].input]
                pending += [("function", f) for f in _callees(graph[key], library)]
            else:
                pending += [("function", f) for node in library[key].node_def
                            for f in _callees(node, library)]
        reach[name] = reached
    return reach


def static_problems(export_dir, defs: dict) -> List[str]:
    """What keeps TensorFlow ``defs["tensorflow"]`` (see :func:`op_defs`) from
    loading ``export_dir``: one message per op or (op, attribute), naming its
    first node and the signatures that run it (the load fails for all)."""
    saved_model = saved_model_pb2.SavedModel.FromString(
        (Path(export_dir) / "saved_model.pb").read_bytes())
    version, known = defs["tensorflow"], {**defs["core"], **defs["text"]}
    problems, places, reach = {}, {}, {}
    for meta_graph in saved_model.meta_graphs:
        reach.update(_signature_reach(meta_graph))
        library = {function.signature.name for function in meta_graph.graph_def.library.function}
        located = [(("graph", node.name), node) for node in meta_graph.graph_def.node] + [
            (("function", function.signature.name), node)
            for function in meta_graph.graph_def.library.function for node in function.node_def]
        for place, node in located:
            if node.op in library:  # a call of a library function by its name
                continue
            for key, problem in _node_problems(node, known.get(node.op), version):
                problems.setdefault(key, f"op {node.op} ({place[0]} {place[1]}, "
                                         f"node {node.name!r}) {problem}")
                places.setdefault(key, set()).add(place)
    named = []
    for key, problem in problems.items():
        signatures = sorted(name for name, reached in reach.items() if reached & places[key])
        named.append(("no signature" if not signatures else
                      f"signature{'s' if len(signatures) > 1 else ''} {', '.join(signatures)}")
                     + f": {problem}")
    return named


def _node_problems(node, attrs: Optional[Dict[str, bool]], version: str):
    """(key, problem) for what TensorFlow ``version`` (OpDef attributes ``attrs``)
    rejects in ``node``."""
    if node.op in PYTHON_OPS:
        yield node.op, "runs Python, which TF Serving does not have"
    elif attrs is None:
        yield node.op, (f"is not registered in TensorFlow {version} "
                        "nor one of the TF Text ops TF Serving links")
    else:
        # Attributes starting with "_" are TensorFlow's own annotations, which
        # node validation skips.
        for name in sorted(set(node.attr) - set(attrs)):
            if not name.startswith("_"):
                yield (node.op, name), (
                    f"has attribute {name!r}, unknown to TensorFlow {version}'s OpDef "
                    f"(the load fails: \"NodeDef mentions attribute {name}\")")
        for name in sorted(a for a, has_default in attrs.items()
                           if not has_default and a not in node.attr):
            yield (node.op, name), (f"lacks attribute {name!r}, which TensorFlow {version} "
                                    "requires")


# === Runtime: the warm-up requests replayed in TensorFlow X ===

def warmup_requests(export_dir) -> List[dict]:
    """[{"signature", "inputs": {name: base64 TensorProto}}] of the export's warm-up file."""
    logs = warmup.read_warmup(Path(export_dir) / "assets.extra" / warmup.WARMUP_FILE)
    return [{"signature": log.predict_log.request.model_spec.signature_name,
             "inputs": {name: probe.encode(tf.make_ndarray(proto))
                        for name, proto in log.predict_log.request.inputs.items()}}
            for log in logs]


def output_problems(expected: Dict[str, str], served: Dict[str, str]) -> List[str]:
    """How ``served`` outputs (base64 TensorProtos by name) differ from ``expected``."""
    problems = [f"output {name!r} is missing" for name in sorted(set(expected) - set(served))]
    problems += [f"output {name!r} is unexpected" for name in sorted(set(served) - set(expected))]
    for name in sorted(set(expected) & set(served)):
        want, got = probe.decode(expected[name]), probe.decode(served[name])
        if (want.dtype, want.shape) != (got.dtype, got.shape):
            problems.append(f"output {name!r} is {got.dtype}{list(got.shape)}, "
                            f"expected {want.dtype}{list(want.shape)}")
        elif want.dtype.kind in "fc":
            apart = ~np.isclose(got, want, rtol=0, atol=ATOL, equal_nan=True)
            if apart.any():
                worst = np.abs(got[apart] - want[apart]).max()
                problems.append(f"output {name!r} differs by up to {worst:.3g} (> {ATOL})")
        elif not np.array_equal(got, want):
            problems.append(f"output {name!r} differs")
    return problems


def runtime_problems(export_dir, version: str, cache_dir: Optional[Path] = None,
                     log=print) -> List[str]:
    """Replays the warm-up requests in TensorFlow ``version``; logs a verdict per signature."""
    requests = warmup_requests(export_dir)
    if not requests:
        raise UserError(f"{export_dir}: no warm-up requests to replay")
    expected = probe.replay(str(export_dir), requests)
    if "error" in expected:
        raise UserError(f"{export_dir}: does not load here either: {expected['error']}")
    served = run_probe(ensure_env(version, cache_dir, log), "replay", Path(export_dir).resolve(),
                       payload=requests)
    if "error" in served:
        problem = f"TensorFlow {served['tensorflow']} cannot load it: {served['error']}"
        log(f"runtime: {problem}")
        return [problem]
    log(f"runtime: TensorFlow {served['tensorflow']} with {served['text_ops']} TF Text ops "
        f"loaded the export in {served['load_seconds']} s, "
        f"replayed its {len(requests)} warm-up request(s) in {served['replay_seconds']} s")
    problems = []
    for want, got in zip(expected["answers"], served["answers"]):
        signature = want["signature"]
        if "error" in want:
            raise UserError(f"{export_dir}: signature {signature} fails here: {want['error']}")
        found = ([got["error"]] if "error" in got else
                 output_problems(want["outputs"], got["outputs"]))
        log(f"  {signature}: " + ("; ".join(found) if found else
                                  f"ok: {', '.join(sorted(want['outputs']))} equal within {ATOL}"))
        problems += [f"signature {signature} in TensorFlow {version}: {p}" for p in found]
    return problems


# === The checks together ===

def check_serving(path, tf_version: Optional[str] = None, static_only: bool = False,
                  cache_dir: Optional[Path] = None, log=print) -> List[str]:
    """Checks an export against TF Serving / TensorFlow ``tf_version`` (default: the
    installed TensorFlow); logs verdicts and returns the problems (none: it serves).

    The runtime check is skipped after static problems: the load would fail on them.

    Raises:
      ValueError: no export at ``path``, a bad version, a virtualenv pip
        cannot build, or an export this environment cannot answer either.
    """
    version = tf_version or tf.__version__
    parse_version(version)
    export_dir = version_folder(path)
    log(f"checking {export_dir} (written by TensorFlow {tf.__version__}) "
        f"against TensorFlow {version}")
    problems = static_problems(export_dir, op_defs(version, cache_dir, log))
    log("static: " + ("ok: every op and attribute is known" if not problems
                      else f"{len(problems)} problem(s)"))
    for problem in problems:
        log(f"  {problem}")
    if problems or static_only:
        return problems
    return runtime_problems(export_dir, version, cache_dir, log)


def require_servable(export_dir, serving_version: str, cache_dir: Optional[Path] = None,
                     log=print):
    """Passes an export for TF Serving ``serving_version`` when that release is not
    older than the exporting TensorFlow, or when :func:`check_serving` finds nothing.

    Raises:
      ValueError: naming both versions and the first problem.
    """
    if parse_version(serving_version)[:2] >= parse_version(matching_serving_version())[:2]:
        return
    problems = check_serving(export_dir, serving_version, cache_dir=cache_dir, log=log)
    if problems:
        raise UserError(
            f"TF Serving {serving_version} cannot serve an export written by TensorFlow "
            f"{tf.__version__}: {problems[0]}"
            + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""))
