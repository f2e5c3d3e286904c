"""README stays in sync with the registry and names the two set-up commands."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_model_table_is_generated_from_registry():
    import importlib.util

    spec = importlib.util.spec_from_file_location("model_table", ROOT / "scripts" / "model_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    readme = (ROOT / "README.md").read_text()
    assert mod.render(readme) == readme, "run: python scripts/model_table.py"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test$", readme, re.M) and re.search(r"^make demo$", readme, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
