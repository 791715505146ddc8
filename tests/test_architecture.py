"""The layout's rules, checked on the source (no imports run): the runtime knows nothing of the web,
training or benchmarks; explain builds on ocr and never on the web faces; functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB = {"fastapi", "starlette", "gradio", "uvicorn"}
#: what each package must never import (explain builds on ocr, so ocr importing it would be a cycle)
FORBIDDEN = {
    "ocr": WEB | {"demo", "training", "benchmarks", "explain"},
    "explain": WEB | {"demo", "training", "benchmarks"},
    "training": WEB | {"demo", "benchmarks"},
    "benchmarks": WEB | {"demo"},  # benchmarks may render synthetic lines with training.synth
}
MAX_FUNCTION_LINES = 80


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every import in the file, at any depth (lazy imports inside functions count)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_they_may(package):
    bad = {str(p.relative_to(ROOT)): sorted(imported_roots(p) & FORBIDDEN[package]) for p in modules(package)}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"{package}/ imports what it must not: {bad}"


def test_web_frameworks_only_in_demo_and_the_entry_point():
    users = {str(p.relative_to(ROOT)) for package in ("ocr", "explain", "training", "benchmarks")
             for p in modules(package) if imported_roots(p) & {"fastapi", "starlette", "gradio"}}
    assert not users, f"only demo/ may import a web framework: {sorted(users)}"


@pytest.mark.parametrize("package", ["ocr", "explain", "demo"])
def test_no_function_is_longer_than_80_lines(package):
    long = []
    for path in modules(package):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_gradio_handlers_are_module_level_functions():
    """Every event function the UI wires is a module-level function of demo/handlers.py."""
    tree = ast.parse((ROOT / "demo" / "ui.py").read_text(encoding="utf-8"))
    wired = {node.args[0].attr for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "bind"
             and node.args and isinstance(node.args[0], ast.Attribute)}
    handlers = ast.parse((ROOT / "demo" / "handlers.py").read_text(encoding="utf-8"))
    top_level = {n.name for n in handlers.body if isinstance(n, ast.FunctionDef)}
    assert wired and wired <= top_level, wired - top_level


def test_one_weights_dir_and_no_environment_reads_outside_settings():
    """Paths and environment variables live in ocr/settings.py (app.py checks glibc's own two)."""
    offenders = []
    for package in ("ocr", "explain", "demo", "training"):
        for path in modules(package):
            if path.name == "settings.py":
                continue
            text = path.read_text(encoding="utf-8")
            if "WEIGHTS_DIR =" in text or "os.environ.get(" in text or "os.environ[" in text:
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_training_never_reads_the_eval_sets():
    """Training, tuning, thresholds and checkpoints come from ../shared/train: no training module names the
    eval root (``EVAL_ROOT``) or builds a path to ``shared/eval``; prose ("never ../shared/eval") is fine."""
    import re

    path_to_eval = re.compile(r"EVAL_ROOT|[\"']eval[\"']|/\s*[\"']eval\b|shared/eval[\"']")
    offenders = []
    for path in modules("training"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if path_to_eval.search(code) and "``" not in code:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders
