"""
The public surface and the layering rules, checked by walking the code.
"""

from __future__ import annotations

import ast
import inspect
import pathlib

import stalwart
import stalwart.testing


SRC = pathlib.Path(stalwart.__file__).parent

# Modules _core may import: pure computation only.
CORE_ALLOWED = {
    "__future__",
    "attrs",
    "bisect",
    "collections",
    "collections.abc",
    "enum",
    "heapq",
    "math",
    "typing",
}
# Shells never import each other (STYLE.md, layering rule 3).
SHELLS = {
    "_adaptive_bulkhead",
    "_buffer",
    "_bulkhead",
    "_chaos",
    "_circuit_breaker",
    "_fallback",
    "_limiters",
    "_pool",
    "_retry",
    "_thread_pool",
    "_timeout",
    "_weighted_bulkhead",
}
# Modules that compose shells (not shells themselves) may import them.
COMPOSERS = {
    "_http": {"_retry"},  # its predicates answer with a RetryAfter
    "_keyed_breaker": {"_circuit_breaker"},
    "_registry": SHELLS,
    # the breaker's shell for a shared state: the same breaker, subclassed
    "_shared_breaker": {"_circuit_breaker"},
}
TIME_READS = {
    ("time", "monotonic"),
    ("time", "time"),
    ("time", "sleep"),
    ("time", "perf_counter"),
    ("asyncio", "sleep"),
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


class TestAll:
    def test_sorted_and_complete(self):
        """
        __all__ names exactly the public attributes, once each.
        """
        public = {
            name
            for name, value in vars(stalwart).items()
            if not name.startswith("_")
            and not inspect.ismodule(value)
            and name not in {"annotations"}
        }

        # The order is ruff's (RUF022); here: complete and without repeats.
        assert len(set(stalwart.__all__)) == len(stalwart.__all__)
        assert public == set(stalwart.__all__)

    def test_every_public_name_documented(self):
        """
        Every exported class and function has a docstring with versionadded.
        """
        for name in [*stalwart.__all__, *stalwart.testing.__all__]:
            obj = getattr(stalwart, name, None) or getattr(
                stalwart.testing, name
            )
            doc = inspect.getdoc(obj) or ""
            assert "versionadded" in doc, name

    def test_version(self):
        """
        __version__ comes from the installed metadata.
        """
        from importlib.metadata import version

        assert version("stalwart") == stalwart.__version__

    def test_unknown_attribute(self):
        """
        Unknown attributes raise AttributeError as usual.
        """
        try:
            stalwart.does_not_exist  # noqa: B018
        except AttributeError as e:
            assert "does_not_exist" in str(e)
        else:
            raise AssertionError("expected AttributeError")


class TestLayering:
    def test_core_is_pure(self):
        """
        _core modules import only pure stdlib modules, attrs, _typing and
        each other.
        """
        for path in (SRC / "_core").glob("*.py"):
            for module in _imports(path):
                if module.startswith("."):
                    assert module in {".", "..", ".._typing"} or (
                        module.startswith(".") and not module.startswith("..")
                    ), (path.name, module)
                else:
                    assert module in CORE_ALLOWED, (path.name, module)

    def test_shells_do_not_import_each_other(self):
        """
        A primitive's shell never imports another primitive's shell.
        """
        for path in SRC.glob("_*.py"):
            if path.name == "__init__.py":  # the flat API imports every shell
                continue
            allowed = COMPOSERS.get(path.stem, set()) | {path.stem}
            for module in _imports(path):
                assert module.lstrip(".") not in SHELLS - allowed, (
                    path.name,
                    module,
                )

    def test_only_the_clock_reads_time(self):
        """
        No module but _clock calls time.monotonic/time/sleep or
        asyncio.sleep.
        """
        for path in SRC.rglob("*.py"):
            if path.name == "_clock.py":
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and (node.value.id, node.attr) in TIME_READS
                ):
                    raise AssertionError(
                        f"{path.name} uses {node.value.id}.{node.attr}"
                    )
