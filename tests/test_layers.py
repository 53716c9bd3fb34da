"""The package's layers import downward only, so no cycle can form.

data → text → features → models → bundle → evaluation → training → store →
profiles → serving → cli: a module may import its own package and the
packages below it, never one above.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tf_profiles"
LAYERS = ["_keras_setup", "data", "text", "features", "models", "bundle", "evaluation",
          "training", "store", "profiles", "serving", "cli"]


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            yield from (name for name in names[:1] if name.startswith("tf_profiles."))
            if node.module == "tf_profiles":
                yield from (name for name in names[1:])
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names
                        if alias.name.startswith("tf_profiles."))


def test_every_import_inside_the_package_goes_down_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        source = _layer(".".join(relative.parts))
        if source == "__init__":  # the package's front door re-exports every layer
            continue
        assert source in LAYERS, f"{relative}: package {source!r} is not in the layer list"
        for imported in _imports(path):
            target = _layer(imported)
            if LAYERS.index(target) > LAYERS.index(source):
                upward.append(f"{relative} ({source}) imports {imported} ({target})")
    assert not upward, "imports going up the layers:\n" + "\n".join(upward)
