"""The import graph is a clean stack: folder names read as the architecture and no module imports
one of a higher layer; no commsim module is imported inside a function, except by the CLI (which
defers heavy imports so that ``--help`` starts fast)."""
import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "commsim"
LAYERS = [
    ["commsim", "commsim.core"],                 # contracts, registry, cache and files, metrics, device, threads
    ["commsim.channels", "commsim.data"],         # channel blocks, image sources
    ["commsim.pipeline"],                         # source -> encoder -> channel -> decoder, evaluation
    ["commsim.fec"],                              # channel codes and their decoders
    ["commsim.learned"],                          # networks, objectives, estimators, training, checkpoints
    ["commsim.source_codes"],                     # source codes (``neural`` uses a learned codec)
    ["commsim.separated", "commsim.bounds"],      # SOURCE+CHANNEL codecs, reference curves
    ["commsim.codecs"],                           # one factory for every registered codec
    ["commsim.sweep", "commsim.sampling", "commsim.ber"],   # sweeps, Markov chains, BER/BLER curves of channel codes
    ["commsim.ray_executor"],                     # sweeps and trainings as Ray tasks (Ray imported when used)
    ["commsim.plotting"],
    ["commsim.cli"],
]


def layer_of(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best[0]


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text())


def imports(tree):
    """``(imported module, inside a function?)`` for every commsim import of a module."""
    found = []

    def visit(node, inside):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((a.name, inside) for a in child.names if a.name.startswith("commsim"))
            elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith("commsim") and child.level == 0:
                found.append((child.module, inside))
            visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def test_no_import_runs_up_the_layers():
    upward = []
    for name, tree in modules():
        for target, _ in imports(tree):
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})")
    assert not upward, "\n".join(upward)


def test_no_function_level_import_outside_the_cli():
    deferred = [f"{name} imports {target} inside a function" for name, tree in modules()
                if name != "commsim.cli" and not name.startswith("commsim.cli.")
                for target, inside in imports(tree) if inside]
    assert not deferred, "\n".join(deferred)


def test_the_layer_check_can_fail():
    tree = ast.parse("from commsim.sweep import run_sweep\ndef f():\n    import commsim.cli\n")
    assert [layer_of(t) > layer_of("commsim.pipeline") for t, _ in imports(tree)] == [True, True]
    assert [inside for _, inside in imports(tree)] == [False, True]


MAX_PARAMETERS = 10
"""No function of commsim takes more named parameters than this, except one whose docstring says why
(a line starting ``Parameters (N):``)."""


def test_no_function_takes_more_than_ten_parameters():
    over = []
    for name, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                count = len([x for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")])
                doc = ast.get_docstring(node) or ""
                if count > MAX_PARAMETERS and "Parameters (" not in doc:
                    over.append(f"{name}.{node.name} takes {count} parameters")
    assert not over, "\n".join(over)


def test_only_the_factory_asks_whether_a_codec_is_learned():
    """The codec protocol (commsim.core.protocol) replaced every ``learned`` branch: no module reads a
    ``learned`` attribute or compares with the string."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"[\"']learned[\"']|(?<!commsim)\.learned\b", line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
