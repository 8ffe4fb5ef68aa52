"""Unit tests of the public surface: `mapper.__all__`, module docstrings, optional drivers."""

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

import mapper

SOURCE = Path(mapper.__file__).parent
MODULES = sorted(SOURCE.rglob("*.py"))


def _imported_names(path: Path) -> set[str]:
    """Every name a module binds with `import` / `from ... import` at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
    return names


def test_all_lists_exactly_the_re_exported_names() -> None:
    """`mapper.__all__` is exactly what `mapper/__init__.py` imports to re-export."""
    assert set(mapper.__all__) == _imported_names(SOURCE / "__init__.py")
    assert len(mapper.__all__) == len(set(mapper.__all__))


def test_no_public_name_is_left_out_of_all() -> None:
    """Every public non-module attribute of `mapper` is listed in `__all__`."""
    public = {
        name
        for name, value in vars(mapper).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(mapper.__all__)


def test_every_exported_name_resolves() -> None:
    """Every name in `__all__` is an attribute of `mapper`."""
    for name in mapper.__all__:
        assert getattr(mapper, name) is not None, name


def test_all_is_sorted() -> None:
    """`__all__` is sorted, so additions are easy to review."""
    assert mapper.__all__ == sorted(mapper.__all__)


def test_exported_classes_come_from_their_defining_module() -> None:
    """Exports are re-exports: each class or function names the mapper module defining it."""
    for name in mapper.__all__:
        value = getattr(mapper, name)
        if isinstance(value, types.ModuleType):
            continue
        assert value.__module__.startswith("mapper."), name


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_every_module_has_a_docstring(path: Path) -> None:
    """Every module opens with a docstring saying what it holds."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring, f"{path} has no module docstring"
    assert len(docstring.strip()) > 20


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if "__all__" in p.read_text(encoding="utf-8")],
    ids=lambda p: str(p.relative_to(SOURCE)),
)
def test_every_module_all_resolves(path: Path) -> None:
    """Each module's `__all__` names only things the module has."""
    module = importlib.import_module(_module_name(path))
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_importing_mapper_imports_no_driver() -> None:
    """`import mapper` loads no database driver, so it works without extras."""
    code = (
        "import sys, mapper\n"
        "loaded = [m for m in ('asyncpg', 'aiosqlite', 'aiomysql', 'asynch') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
