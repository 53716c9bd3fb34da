"""The package's layers import downward only, and no modules import each other in a cycle.

errors → data → text → features → models → bundle → evaluation → training → store →
profiles → serving → compat → export → devserver → workflows → cli: a module
may import its own package and the packages below it, never one above.
Inside a package, the module graph has no cycle either (function-local
imports included: they hide a cycle, they do not remove it).
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tf_profiles"
LAYERS = ["_keras_setup", "errors", "data", "text", "features", "models", "bundle", "evaluation",
          "training", "store", "profiles", "serving", "compat", "export", "devserver",
          "workflows", "cli"]
# The servable is TensorFlow only: RPC libraries belong to the client and
# the development server.
RPC_FREE = ("export",)
RPC_LIBRARIES = ("grpc", "tensorflow_serving")


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path):
    """Every tf_profiles module or name imported, anywhere in the file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("tf_profiles."):
                yield node.module
            if node.module == "tf_profiles" or node.module.startswith("tf_profiles."):
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    # A name of the front door (``__version__``) is the package itself.
                    yield name if _is_module(name) or node.module != "tf_profiles" else node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names
                        if alias.name.startswith("tf_profiles."))


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def _external_roots(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]
        elif isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)


def _modules():
    return {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path
            for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules) -> str:
    """``tf_profiles.a.b.Name`` → the module ``tf_profiles.a.b`` (a package's
    ``__init__`` is the module ``tf_profiles.a.__init__``)."""
    while name not in modules and f"{name}.__init__" not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in modules else f"{name}.__init__"


def test_every_import_inside_the_package_goes_down_the_layers():
    upward = []
    for module, path in _modules().items():
        source = _layer(module)
        if source == "__init__":  # the package's front door re-exports every layer
            continue
        assert source in LAYERS, f"{module}: package {source!r} is not in the layer list"
        for imported in _imports(path):
            target = _layer(imported)
            if target != "__init__" and LAYERS.index(target) > LAYERS.index(source):
                upward.append(f"{module} ({source}) imports {imported} ({target})")
    assert not upward, "imports going up the layers:\n" + "\n".join(upward)


def test_no_module_import_cycle():
    modules = _modules()
    graph = {module: sorted({_resolve(name, modules) for name in _imports(path)} - {module})
             for module, path in modules.items()}
    state, cycles = {}, []

    def visit(module, trail):
        state[module] = "open"
        for target in graph.get(module, []):
            if state.get(target) == "open":
                cycles.append(" → ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "module import cycles:\n" + "\n".join(cycles)


def test_the_export_layer_imports_no_rpc_library():
    found = [f"{module} imports {root}" for module, path in _modules().items()
             if _layer(module) in RPC_FREE
             for root in _external_roots(path) if root in RPC_LIBRARIES]
    assert not found, "\n".join(found)
