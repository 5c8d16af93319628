"""A plain `pip install -e .` (no torch, transformers or datasets) is enough for builtin
models, reports, the store and the gate; what needs the `hf` extra says so in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_rmbench.models.base import ModelLoadError
from pytest_rmbench.requires import HF_EXTRA, require
from pytest_rmbench.suites.base import SuiteDataError

ROOT = Path(__file__).resolve().parent.parent
HF_PACKAGES = ("torch", "transformers", "datasets")

# Runs pytest in a Python where the `hf` extra and what only it brings in cannot be imported,
# as on a fresh machine after `pip install -e .`; prints the blocked imports that were tried.
WITHOUT_HF = textwrap.dedent(
    """
    import sys

    BLOCKED = {"torch", "transformers", "datasets", "huggingface_hub", "tokenizers", "safetensors",
               "accelerate", "pyarrow", "numpy", "pandas", "scipy"}
    tried = []

    class WithoutHf:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in BLOCKED:
                tried.append(name)
                raise ModuleNotFoundError(f"No module named {top!r}", name=top)
            return None

    for name in list(sys.modules):
        if name.partition(".")[0] in BLOCKED:
            del sys.modules[name]
    sys.meta_path.insert(0, WithoutHf())
    import pytest

    code = pytest.main(sys.argv[1:])
    print("BLOCKED IMPORTS TRIED:", sorted({n.partition(".")[0] for n in tried}))
    sys.exit(code)
    """
)

ITEMS = """\
name: install-smoke
gate: {overall: 1.0}
items:
  - {id: a, subset: chat, prompt: Say hi., chosen: "Hello there, friend!", rejected: Hi}
  - {id: b, subset: chat, prompt: Name a colour., chosen: A deep blue, rejected: Red}
"""


def run_without_hf(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_HF, "-p", "no:cacheprovider", "-q", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture
def items_file(tmp_path: Path) -> Path:
    path = tmp_path / "smoke.rmbench.yaml"
    path.write_text(ITEMS, encoding="utf-8")
    return path


def assert_one_clear_line(proc: subprocess.CompletedProcess, needs: str) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    lines = [line for line in out.splitlines() if HF_EXTRA in line]
    assert lines, out
    assert any(needs in line for line in lines), out


def test_builtin_model_runs_without_torch_transformers_datasets(tmp_path, items_file):
    proc = run_without_hf(tmp_path, items_file.name, "--rm-model=builtin:length", "--rm-report=run.json",
                          "--rm-html=run.html", "--rm-markdown=run.md")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "2 passed" in out, out
    assert "BLOCKED IMPORTS TRIED: []" in out, out
    report = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert report["overall"]["accuracy"] == 1.0
    assert report["gate"]["passed"] is True
    assert (tmp_path / "run.html").stat().st_size and (tmp_path / "run.md").stat().st_size
    assert (tmp_path / ".rmbench" / "runs.sqlite").is_file()  # the run store


def test_transformers_model_without_the_extra_is_one_line_naming_the_install(tmp_path, items_file):
    folder = tmp_path / "rm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                     "model_type": "bert"}), encoding="utf-8")
    proc = run_without_hf(tmp_path, items_file.name, "--rm-model=./rm")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_one_clear_line(proc, "needs torch and transformers, which are not installed: pip install 'pytest-rmbench[hf]'")


def test_hub_model_without_the_extra_is_one_line_naming_the_install(tmp_path, items_file):
    proc = run_without_hf(tmp_path, items_file.name, "--rm-model=some-org/some-reward-model")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert_one_clear_line(proc, "needs torch and transformers")


@pytest.mark.parametrize("args", [["--rm-bench", "rewardbench"], ["--rm-dataset", "some-org/prefs"]],
                         ids=["rm-bench", "rm-dataset"])
def test_hub_dataset_without_the_extra_is_one_line_naming_the_install(tmp_path, args):
    proc = run_without_hf(tmp_path, *args, "--rm-model=builtin:length")
    assert proc.returncode in (1, 2), proc.stdout + proc.stderr  # a collection error
    assert_one_clear_line(proc, "needs datasets, which is not installed: pip install 'pytest-rmbench[hf]'")


def test_require_raises_the_given_error_naming_the_extra():
    require("json", what="nothing")  # importable: no error
    with pytest.raises(ModelLoadError, match=r"^this model needs no_such_pkg_a and no_such_pkg_b, which are not "
                                             r"installed: pip install 'pytest-rmbench\[hf\]'$"):
        require("json", "no_such_pkg_a", "no_such_pkg_b", what="this model", error=ModelLoadError)
    with pytest.raises(SuiteDataError, match=r"\(or use local files\)$"):
        require("no_such_pkg_a", what="the suite", error=SuiteDataError, hint="or use local files")


def load_pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def requirement_name(requirement: str) -> str:
    import re

    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def test_torch_transformers_datasets_are_the_hf_extra_not_dependencies():
    project = load_pyproject()["project"]
    dependencies = {requirement_name(r) for r in project["dependencies"]}
    assert not dependencies & set(HF_PACKAGES), dependencies
    extras = project["optional-dependencies"]
    assert {requirement_name(r) for r in extras["hf"]} >= set(HF_PACKAGES)
    # the test extra still installs everything the tests need
    assert "pytest-rmbench[hf]" in extras["test"]
    assert "scipy" in {requirement_name(r) for r in extras["test"]}


def test_ci_installs_the_cpu_torch_wheel_before_the_test_extra():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
             if not line.strip().startswith("#")]
    torch_line = next(i for i, line in enumerate(lines) if "pip install" in line and "torch==" in line)
    extra_line = next(i for i, line in enumerate(lines) if "pip install" in line and '-e ".[test' in line)
    assert torch_line < extra_line
