"""Every YAML, shell and Python example in README.md is checked against the real code.

- YAML blocks parse; those labelled `# file: NAME.rmbench.yaml` are item files: they
  validate without problems and run on builtin:length. A GitHub workflow's `run:` steps
  are checked as shell commands.
- Shell blocks (bash, sh, shell, console): `pytest` / `python -m pytest` lines parse with the
  plugin's real options and settings, `pip install` lines name extras and pins that
  pyproject.toml has, `python -m pytest_rmbench` lines parse with the CLI's parser, and the
  few other commands are listed in OTHER_COMMANDS with what is checked and why.
- Python blocks compile; those labelled `# file: test_*.py` run and pass on builtin:length,
  and the conftest.py examples run in the scenario PYTHON_SCENARIOS gives them.

Nothing is skipped silently: a block or command this file does not know how to check fails.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pytest_rmbench.cli import build_parser
from pytest_rmbench.items import ItemProblem
from pytest_rmbench.items.files import parse_assignments, parse_file, parse_section_assignment, parse_threshold_value

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHELL = ("bash", "sh", "shell", "console")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
LABEL = re.compile(r"\A#\s*file:\s*(\S+)\s*\n")


@dataclass
class Block:
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def label(self) -> str | None:
        match = LABEL.match(self.text)
        return match.group(1) if match else None


def readme_blocks(*langs: str) -> list[Block]:
    text = README.read_text(encoding="utf-8")
    found = [Block(text.count("\n", 0, m.start()) + 1, m.group(1).lower(), m.group(2)) for m in FENCE.finditer(text)]
    return [b for b in found if b.lang in langs]


def block_name(block: Block) -> str:
    """'Quickstart#2': the block's section heading and its number among the section's blocks
    (steadier than a line number while the README grows)."""
    lines = README.read_text(encoding="utf-8").splitlines()[: block.line - 1]
    in_fence, heading, number = False, "top", 0
    for line in lines:
        if line.startswith("```"):
            in_fence = not in_fence
            if in_fence:
                number += 1
        elif not in_fence and line.startswith("#"):
            heading, number = line.lstrip("#").strip(), 0
    return f"{heading}#{number + 1}"


def ids(blocks):
    return [block_name(b) for b in blocks]


YAML_BLOCKS = readme_blocks("yaml", "yml")
SHELL_BLOCKS = readme_blocks(*SHELL)
PYTHON_BLOCKS = readme_blocks("python", "py")
ITEM_FILE_BLOCKS = [b for b in YAML_BLOCKS if b.label]


def is_workflow(block: Block) -> bool:
    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError:
        return False  # test_yaml_block_parses says why
    return isinstance(data, dict) and "jobs" in data


WORKFLOW_BLOCKS = [b for b in YAML_BLOCKS if is_workflow(b)]


def test_the_readme_has_the_examples_this_file_checks():
    assert len(YAML_BLOCKS) >= 3 and len(SHELL_BLOCKS) >= 5 and len(PYTHON_BLOCKS) >= 3
    assert ITEM_FILE_BLOCKS and WORKFLOW_BLOCKS


# -- YAML ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=ids(YAML_BLOCKS))
def test_yaml_block_parses(block):
    data = yaml.safe_load(block.text)
    assert isinstance(data, dict), "a YAML example should be a mapping"
    if "items" in data:  # an item file must say so, or it would be left unrun
        assert block.label and re.search(r"\.rmbench\.ya?ml$", block.label), (
            "an item file example needs a first line '# file: NAME.rmbench.yaml'")
    if block.label:
        assert "items" in data, "a '# file:' label on a YAML block marks an item file"


# Errors an item may get from builtin:length, which is not the model its kind needs.
MODEL_KIND_ERRORS = (
    "need a process reward model",  # a `steps` item: only a PRM scores steps
    "the model cannot see images",  # an item with images: builtin:length reads text only
)


@pytest.mark.parametrize("block", ITEM_FILE_BLOCKS, ids=ids(ITEM_FILE_BLOCKS))
def test_item_file_block_validates_and_runs(block, pytester):
    parsed = parse_file(block.label, block.text.encode("utf-8"))
    problems = [e.describe() for e in parsed.entries if isinstance(e, ItemProblem)]
    assert not problems
    assert not parsed.unknown_fields
    pytester.path.joinpath(block.label).write_text(block.text, encoding="utf-8")
    result = pytester.runpytest("-p", "no:cacheprovider", block.label, "--rm-model=builtin:length",
                                "--rm-report=run.json", "--rm-no-store")
    assert result.ret in (0, 1), result.stdout.str()  # 1: the gate of a model that counts characters
    report = json.loads(pytester.path.joinpath("run.json").read_text(encoding="utf-8"))
    assert len(report["items"]) == len(parsed.entries)
    for item in report["items"]:
        if item["outcome"] == "error":
            assert any(reason in item["error"] for reason in MODEL_KIND_ERRORS), item


# -- shell commands ------------------------------------------------------------------------------

# Placeholders in examples, and what they stand for here.
PLACEHOLDERS = {
    "${{ vars.RM_CHECKPOINT }}": "./checkpoints/rm",
    "${{ vars.RM_RELEASED_MODEL }}": "released-model",
    "$RM_STORE": "{tmp}/runs.sqlite",
}


def substitute(line: str, tmp: Path) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        line = line.replace(placeholder, value.format(tmp=tmp))
    assert "$" not in line and not re.search(r"<[A-Z_]+>", line), f"an unknown placeholder in {line!r}: add it to PLACEHOLDERS"
    return line


def shell_commands(text: str, console: bool = False) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments dropped, each
    line split on && and ;."""
    lines = []
    for raw in text.replace("\\\n", " ").splitlines():
        if console:
            if not raw.startswith("$ "):
                continue  # output
            raw = raw[2:]
        if raw.strip():
            lines.append(raw)
    commands = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars="&;|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in lexer:
            if token in ("&&", ";", "||"):
                commands.append(current)
                current = []
            else:
                assert token != "|", f"pipes are not checked: {line!r}"
                current.append(token)
        if current:
            commands.append(current)
    return [c for c in commands if c]


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def check_pytest(args: list[str], pytester) -> None:
    """The plugin's real command line and settings: unknown options, bad values and bad
    settings are usage errors here as in a real run."""
    config = pytester.parseconfigure(*args)
    assert config.pluginmanager.has_plugin("rmbench")
    # values the plugin reads only once items are collected, read here as it reads them
    option = config.option
    for name, value in parse_assignments(option.rm_min_accuracy, "--rm-min-accuracy"):
        parse_threshold_value(name, value)
    for name, value in parse_assignments(option.rm_sections, "--rm-section"):
        parse_section_assignment(name, value)
    parse_assignments(option.rm_suite_options, "--rm-suite-option")


def check_pip_install(args: list[str], pytester) -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    known = {canonicalize_name(Requirement(r).name): Requirement(r)
             for r in project["dependencies"] + [r for rs in extras.values() for r in rs]}
    targets, options_with_value = [], {"--index-url", "--extra-index-url", "-i", "-r", "-c"}
    rest = iter(args)
    for arg in rest:
        if arg in options_with_value:
            next(rest)
        elif arg.startswith("-") and arg != "-e":
            continue
        elif arg != "-e":
            targets.append(arg)
    assert targets, f"pip install of nothing: {args}"
    for target in targets:
        local = re.fullmatch(r"\.(\[([\w,-]*)\])?", target)
        if local:
            wanted = [e for e in (local.group(2) or "").split(",") if e]
        else:
            requirement = Requirement(target)
            name = canonicalize_name(requirement.name)
            if name == project["name"]:
                wanted = sorted(requirement.extras)
            else:  # another package: one of ours, with a pin our own requirement allows
                assert name in known, f"{target!r} is not a requirement in pyproject.toml"
                for spec in requirement.specifier:
                    if spec.operator == "==":
                        assert known[name].specifier.contains(spec.version), f"{target!r} vs {known[name]}"
                continue
        missing = [e for e in wanted if e not in extras]
        assert not missing, f"{target!r}: pyproject.toml has no extra {missing}; it has {sorted(extras)}"


def check_cli(args: list[str], pytester) -> None:
    build_parser().parse_args(args)


def check_venv(args: list[str], pytester) -> None:
    assert args[:1] and not args[0].startswith("-"), args


def check_activate(args: list[str], pytester) -> None:
    assert args == [".venv/bin/activate"], args


def check_bench_script(args: list[str], pytester) -> None:
    script = ROOT / args[0]
    assert script.is_file(), f"{args[0]} does not exist"
    text = script.read_text(encoding="utf-8")
    for option in (a for a in args[1:] if a.startswith("--")):
        assert f'"{option.split("=")[0]}"' in text, f"{args[0]} has no option {option}"


# (command prefix, check, what is checked and why no more)
COMMANDS = [
    (["pytest"], check_pytest, "parsed and configured by the plugin"),
    (["python", "-m", "pytest"], check_pytest, "parsed and configured by the plugin"),
    (["pip", "install"], check_pip_install, "extras and pins against pyproject.toml"),
    (["python", "-m", "pip", "install"], check_pip_install, "extras and pins against pyproject.toml"),
    (["python", "-m", "pytest_rmbench"], check_cli, "parsed by the CLI's parser"),
]
OTHER_COMMANDS = [
    (["python", "-m", "venv"], check_venv, "the standard library's venv: nothing of ours to check"),
    (["."], check_activate, "sources the venv the line before made"),
    (["python", "bench/"], check_bench_script,
     "a benchmark script: minutes, some need a GPU; it exists and has the options used"),
    (["python3", "bench/"], check_bench_script,
     "a benchmark script: minutes, some need a GPU; it exists and has the options used"),
]


def check_command(command: list[str], pytester) -> None:
    """Runs the check of the first prefix that matches; a prefix word ending in '/' matches
    any word starting with it and stays in the arguments (a script's path)."""
    for prefix, check, _why in COMMANDS + OTHER_COMMANDS:
        if len(command) >= len(prefix) and all(
                got.startswith(want) if want.endswith("/") else got == want for got, want in zip(command, prefix)):
            keep = 1 if prefix[-1].endswith("/") else 0
            check(command[len(prefix) - keep:], pytester)
            return
    pytest.fail(f"no check for the command {shlex.join(command)!r}: add one to COMMANDS or OTHER_COMMANDS")


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=ids(SHELL_BLOCKS))
def test_shell_block_commands_are_real(block, pytester):
    commands = shell_commands(substitute(block.text, pytester.path), console=block.lang == "console")
    assert commands
    for command in commands:
        check_command(command, pytester)


def workflow_runs(block: Block) -> list[str]:
    workflow = yaml.safe_load(block.text)
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


@pytest.mark.parametrize("block", WORKFLOW_BLOCKS, ids=ids(WORKFLOW_BLOCKS))
def test_workflow_run_steps_are_real(block, pytester):
    runs = workflow_runs(block)
    assert runs
    for run in runs:
        for command in shell_commands(substitute(run, pytester.path)):
            check_command(command, pytester)


def test_unknown_options_and_extras_are_caught(pytester):
    """The checks above can fail."""
    with pytest.raises(pytest.UsageError):
        check_pytest(["--rm-no-such-option"], pytester)
    with pytest.raises(pytest.UsageError):
        check_pytest(["--rm-gate-rule", "no-such-rule"], pytester)
    with pytest.raises(ValueError, match="must be a number"):
        check_pytest(["--rm-min-accuracy", "chat=high"], pytester)
    with pytest.raises(ValueError, match="NAME=VALUE"):
        check_pytest(["--rm-section", "Chat"], pytester)
    with pytest.raises(AssertionError, match="no extra"):
        check_pip_install(["-e", ".[no-such-extra]"], pytester)
    with pytest.raises(AssertionError, match="no extra"):
        check_pip_install(["pytest-rmbench[no-such-extra]"], pytester)
    with pytest.raises(AssertionError):
        check_pip_install(["torch==1.0"], pytester)
    with pytest.raises(SystemExit):
        check_cli(["runs", "no-such-command"], pytester)
    with pytest.raises(pytest.fail.Exception, match="no check"):
        check_command(["make", "all"], pytester)
    assert shell_commands("a b && c 'd # e' # f\nx \\\n  y") == [["a", "b"], ["c", "d # e"], ["x", "y"]]


def test_quickstart_run_exits_as_the_readme_says(pytester):
    """The Quickstart's main command, on the bundled suite: builtin:length fails its gate (exit 1)."""
    quickstart = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "**exits 1**" in quickstart
    lines = [line for b in FENCE.finditer(quickstart) if b.group(1) in SHELL for line in b.group(2).splitlines()
             if line.startswith("pytest ") and "builtin:length" in line]
    assert len(lines) == 1, lines
    shutil.copytree(ROOT / "benchmarks", pytester.path / "benchmarks")
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")  # it leaves benchmarks/pairwise out
    result = pytester.runpytest("-p", "no:cacheprovider", *shlex.split(lines[0])[1:], "--rm-no-store")
    assert result.ret == 1, result.stdout.str()
    # one character per item, not one line
    assert any(re.fullmatch(r"benchmarks/core\.rmbench\.yaml [.iE]+\s*\[\s*\d+%\]", line.strip())
               for line in result.stdout.lines), result.stdout.str()
    assert "cycles.rmbench.yaml" not in result.stdout.str()  # the pairwise folder runs only when named


# -- Python --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=ids(PYTHON_BLOCKS))
def test_python_block_compiles(block):
    compile(block.text, f"README.md:{block.line}", "exec")


TEST_FILE_BLOCKS = [b for b in PYTHON_BLOCKS if b.label]


@pytest.mark.parametrize("block", TEST_FILE_BLOCKS, ids=ids(TEST_FILE_BLOCKS))
def test_python_test_file_block_passes_on_builtin_length(block, pytester):
    assert re.fullmatch(r"test_\w+\.py", block.label), block.label
    pytester.path.joinpath(block.label).write_text(block.text, encoding="utf-8")
    result = pytester.runpytest("-p", "no:cacheprovider", block.label, "--rm-model=builtin:length", "--rm-no-store")
    tests = len(re.findall(r"^def test_", block.text, re.M))
    result.assert_outcomes(passed=tests)


HELPDESK_ROWS = [
    {"ticket": 1, "team": "billing", "question": "Why was I charged twice?",
     "good": "A duplicate charge is a pending authorisation; it drops off in 3 days.", "bad": "No idea."},
    {"ticket": 2, "team": "billing", "question": "Refund?", "good": "Yes, within 30 days.", "bad": ""},
]
KEYWORD_ITEMS = """\
items:
  - {id: 1, subset: tone, prompt: Pass the salt., chosen: "Could you please pass it?", rejected: Salt. Now.}
"""

# conftest.py examples: the files they need, the arguments they run with, and the outcomes.
PYTHON_SCENARIOS = {
    "class KeywordModel": ({"k.rmbench.yaml": KEYWORD_ITEMS}, ["k.rmbench.yaml", "--rm-model=keywords"],
                           {"passed": 1}),
    "class HelpdeskSuite": ({"data/helpdesk.jsonl": "\n".join(json.dumps(r) for r in HELPDESK_ROWS)},
                            ["--rm-bench", "helpdesk", "--rm-model=builtin:length"],
                            {"passed": 1, "errors": 1}),  # the empty answer is an error test naming the row
}
CONFTEST_BLOCKS = [b for b in PYTHON_BLOCKS if not b.label]


@pytest.mark.parametrize("block", CONFTEST_BLOCKS, ids=ids(CONFTEST_BLOCKS))
def test_conftest_block_runs(block, pytester):
    assert block.text.startswith("# conftest.py\n"), "label a test file '# file: test_x.py' or add a scenario"
    scenarios = [key for key in PYTHON_SCENARIOS if key in block.text]
    assert len(scenarios) == 1, f"no scenario in PYTHON_SCENARIOS for README.md:{block.line}"
    files, args, outcomes = PYTHON_SCENARIOS[scenarios[0]]
    pytester.makeconftest(block.text)
    for name, text in files.items():
        pytester.path.joinpath(name).parent.mkdir(parents=True, exist_ok=True)
        pytester.path.joinpath(name).write_text(text, encoding="utf-8")
    result = pytester.runpytest("-p", "no:cacheprovider", *args, "--rm-no-store")
    result.assert_outcomes(**outcomes)


if __name__ == "__main__":  # list what is checked
    for b in YAML_BLOCKS + SHELL_BLOCKS + PYTHON_BLOCKS:
        print(b.line, b.lang, b.label or "", file=sys.stdout)
