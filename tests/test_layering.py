"""Layering: the library ``zoo`` never imports ``eval`` (eval depends on zoo, never the reverse).

Every module under ``zoo/`` is parsed with ``ast``; an ``import eval...`` / ``from eval...``
statement, an ``importlib.import_module`` / ``__import__`` call on an ``eval`` module name, or any
string that spells an ``eval`` module path (``"eval.run"``, ``"eval.demo:main"``: what a lazy import
or a delegation table would hold) is a violation. ``eval``'s commands reach ``python -m zoo``
through the ``tokenizer_zoo.commands`` entry points declared in pyproject.toml.
"""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MODULE_PATH = re.compile(r"eval(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")
_IMPORT_CALLS = {"import_module", "__import__"}


def _names_eval(module: str | None) -> bool:
    return module is not None and (module == "eval" or module.startswith("eval."))


def eval_imports(source: str, filename: str = "<source>") -> list[str]:
    """Violations in one module's source: ``"file:line what"``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if _names_eval(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _names_eval(node.module):
            found.append(f"{where} from {node.module} import ...")
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else None
            arg = node.args[0] if node.args else None
            if name in _IMPORT_CALLS and isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                    and _names_eval(arg.value):
                found.append(f"{where} {name}({arg.value!r})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_PATH.fullmatch(node.value):
            found.append(f"{where} module path string {node.value!r}")
    return found


def test_the_checker_finds_every_form_of_importing_eval():
    src = ("import eval\nimport eval.run as r\nfrom eval.image import psnr\nimport importlib\n"
           "importlib.import_module('eval.demo')\n__import__('eval')\nTABLE = {'eval': 'eval.run'}\n"
           "EP = 'eval.demo:main'\n")
    lines = {int(v.split()[0].rsplit(":", 1)[1]) for v in eval_imports(src)}
    assert lines == {1, 2, 3, 5, 6, 7, 8}
    ok = ("from . import eval_helpers\nimport evaluate\nmodel.eval()\ncfg = {'eval': {'num_samples': 8}}\n"
          "OVERRIDE = 'eval.num_samples=1'\nKEY = 'eval/psnr'\n")
    assert eval_imports(ok) == []


def test_zoo_never_imports_eval():
    files = sorted((ROOT / "zoo").rglob("*.py"))
    assert len(files) > 50
    found = [v for f in files for v in eval_imports(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))]
    assert found == [], "zoo imports eval:\n" + "\n".join(found)


def test_eval_commands_are_entry_points_of_the_zoo_cli():
    """``zoo eval`` / ``zoo demo`` exist through the plugin group that zoo.cli reads."""
    from zoo.cli import COMMAND_GROUP

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    commands = meta["project"]["entry-points"][COMMAND_GROUP]
    assert commands == {"eval": "eval.run:main", "demo": "eval.demo:main"}
    for target in commands.values():
        module, func = target.split(":")
        assert callable(getattr(__import__(module, fromlist=[func]), func))


def test_plugin_commands_run_and_never_take_over_a_zoo_command(monkeypatch, capsys):
    from importlib.metadata import EntryPoint

    import zoo.cli as cli

    fake = {name: EntryPoint(name, "builtins:len", cli.COMMAND_GROUP) for name in ("count", "list")}
    monkeypatch.setattr(cli, "plugin_commands", lambda: fake)
    assert cli.main(["count", "a", "b", "c"]) == 3  # main(argv) of the plugin gets the arguments after its name
    assert cli.main(["list", "titok_tiny*"]) == 0   # the zoo's own `list`, not the plugin's len(argv) == 1
    assert "titok_tiny.untrained" in capsys.readouterr().out
