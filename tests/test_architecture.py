"""The layout rules of the code base (README, Layout): sizes, thin adapters, no private names
across packages, no snakemake in the library, numpydoc on public functions, names that match."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "src" / "voxelyte"
SCRIPTS = ROOT / "workflow" / "scripts"
RULES = ROOT / "workflow" / "rules"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 600
MAX_SCRIPT_LINES = 40
#: Stages: rule file = library module or package = test file prefix.
STAGES = ("phantom", "ingest", "register", "preprocess", "segment", "evaluate", "descriptors",
          "transport", "ssrm", "report", "provenance")


def _modules():
    return sorted(LIBRARY.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _package_of(module: str) -> str:
    """'voxelyte.segment.forest' -> 'voxelyte.segment'; 'voxelyte.contract' -> itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _module_name(path: Path) -> str:
    rel = path.relative_to(LIBRARY.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_numba_kernel(node) -> bool:
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("njit", "jit", "vectorize", "guvectorize", "stencil"):
            return True
    return False


def _functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_library_functions_are_at_most_80_lines():
    long = []
    for path in _modules():
        for node in _functions(_tree(path)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES and not _is_numba_kernel(node):
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_library_modules_are_at_most_600_lines():
    big = [f"{p.relative_to(ROOT)} ({n})" for p in _modules()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not big, "modules over 600 lines: " + ", ".join(big)


def test_workflow_scripts_are_thin_adapters():
    fat = [f"{p.name} ({n})" for p in sorted(SCRIPTS.glob("*.py"))
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_SCRIPT_LINES]
    assert not fat, "workflow scripts over 40 lines: " + ", ".join(fat)


def _voxelyte_imports(path: Path):
    """(imported module, name or None, line) of every voxelyte import in a module."""
    this = _module_name(path)
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            if node.level:       # relative: resolve against this module's package
                base = this.split(".")
                base = base[:len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "voxelyte":
                for alias in node.names:
                    yield module, alias.name, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "voxelyte":
                    yield alias.name, None, node.lineno


def test_no_private_name_is_imported_across_packages():
    found = []
    for path in _modules():
        own = _package_of(_module_name(path))
        for module, name, line in _voxelyte_imports(path):
            target = f"{module}.{name}" if name else module
            private = [p for p in target.split(".")[1:] if p.startswith("_")
                       and not p.startswith("__")]
            if private and _package_of(target) != own:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    for path in sorted(SCRIPTS.glob("*.py")) + sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("voxelyte"):
                found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_")
                          and not a.name.startswith("__")]
                if any(p.startswith("_") and not p.startswith("__")
                       for p in node.module.split(".")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert not found, "private names used across packages:\n" + "\n".join(found)


def test_private_attributes_of_other_packages_are_not_used():
    """``from voxelyte import conduction`` then ``conduction._helper`` is a private import too."""
    found = []
    for path in _modules():
        own = _package_of(_module_name(path))
        aliases = {}
        for module, name, _ in _voxelyte_imports(path):
            if name and not name.startswith("_"):
                aliases[name] = f"{module}.{name}"
        for node in ast.walk(_tree(path)):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and node.value.id in aliases
                    and _package_of(aliases[node.value.id]) != own):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} "
                             f"{node.value.id}.{node.attr}")
    assert not found, "private attributes of other packages:\n" + "\n".join(found)


def test_library_never_imports_snakemake():
    found = [f"{p.relative_to(ROOT)}" for p in _modules()
             for node in ast.walk(_tree(p))
             if isinstance(node, (ast.Import, ast.ImportFrom))
             and any((a.name if isinstance(node, ast.Import) else (node.module or ""))
                     .split(".")[0] == "snakemake" for a in node.names)]
    assert not found, f"library modules importing snakemake: {found}"


def _public_functions(path: Path):
    tree = _tree(path)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and not node.name.startswith("_"):
            yield node


def test_public_functions_have_numpydoc_sections():
    missing = []
    for path in _modules():
        for node in _public_functions(path):
            doc = ast.get_docstring(node) or ""
            has_params = not [a for a in node.args.args + node.args.kwonlyargs
                              if a.arg not in ("self", "cls")] or "Parameters\n" in doc
            has_returns = ("Returns\n" in doc or "Yields\n" in doc
                           or (node.returns is not None and ast.unparse(node.returns) == "None"))
            if not (has_params and has_returns):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not missing, ("public functions without numpydoc Parameters / Returns:\n"
                         + "\n".join(missing))


def _decorator_names(node):
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        yield target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def _public_methods(path: Path):
    """Public methods of public module-level classes; dunders (``__init__`` ...) are exempt."""
    for cls in _tree(path).body:
        if isinstance(cls, ast.ClassDef) and not cls.name.startswith("_"):
            for node in cls.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                        and not node.name.startswith("_"):
                    yield cls, node


def test_public_methods_have_numpydoc_sections():
    """Methods document Parameters and Returns like functions; a property needs only Returns,
    a property setter or deleter nothing (the getter documents the attribute)."""
    missing = []
    for path in _modules():
        for cls, node in _public_methods(path):
            decorators = set(_decorator_names(node))
            if decorators & {"setter", "deleter"}:
                continue
            doc = ast.get_docstring(node) or ""
            is_property = bool(decorators & {"property", "cached_property"})
            has_params = (is_property or "Parameters\n" in doc
                          or not [a for a in node.args.posonlyargs + node.args.args
                                  + node.args.kwonlyargs if a.arg not in ("self", "cls")])
            has_returns = ("Returns\n" in doc or "Yields\n" in doc
                           or (not is_property and node.returns is not None
                               and ast.unparse(node.returns) == "None"))
            if not (has_params and has_returns):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {cls.name}.{node.name}")
    assert not missing, ("public methods without numpydoc Parameters / Returns:\n"
                         + "\n".join(missing))


@pytest.mark.parametrize("stage", STAGES)
def test_stage_names_match_rule_library_and_tests(stage):
    assert (RULES / f"{stage}.smk").is_file(), f"workflow/rules/{stage}.smk"
    assert (SCRIPTS / f"{stage}.py").is_file(), f"workflow/scripts/{stage}.py"
    assert (LIBRARY / f"{stage}.py").is_file() or (LIBRARY / stage / "__init__.py").is_file(), \
        f"src/voxelyte/{stage}(.py|/)"
    assert list((ROOT / "tests").glob(f"test_{stage}*.py")), f"tests/test_{stage}*.py"


def test_every_rule_file_is_a_stage():
    extra = {p.stem for p in RULES.glob("*.smk")} - set(STAGES) - {"common"}
    assert not extra, f"rule files that are no stage: {extra}"
