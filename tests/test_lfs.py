"""Git LFS pointer files (a clone made without git-lfs) in place of suite data or item files:
named as pointers with the fix, and only their part is left out."""

import json
import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, PairItem
from pytest_rmbench.items.lfs import LfsPointerFile, is_pointer, is_pointer_data
from pytest_rmbench.items.files import FileParseError, parse_file
from pytest_rmbench.suites.base import DataSource, SuiteDataError
from pytest_rmbench.suites.hhrlhf import HH_RLHF
from pytest_rmbench.suites.rewardbench2 import REWARDBENCH2
from pytest_rmbench.suites.rm_bench import RMBENCH

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import write_json, write_jsonl  # noqa: E402

pytest_plugins = ["pytester"]

POINTER = ("version https://git-lfs.github.com/spec/v1\n"
           "oid sha256:3f8b0c1d9e2a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678\n"
           "size 742193\n")


def pointer(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(POINTER)
    return path


def hh(question, good, bad):
    return {"chosen": f"\n\nHuman: {question}\n\nAssistant: {good}", "rejected": f"\n\nHuman: {question}\n\nAssistant: {bad}"}


def test_detection_looks_at_the_first_bytes(tmp_path):
    assert is_pointer(pointer(tmp_path / "a.jsonl.gz"))
    assert is_pointer_data(POINTER.encode()) and is_pointer_data(POINTER.encode()[:45])
    assert not is_pointer_data(b'{"version": "https://git-lfs.github.com/spec/v1"}')
    assert not is_pointer_data(b"")
    (tmp_path / "real.jsonl").write_text('{"a": 1}\n')
    assert not is_pointer(tmp_path / "real.jsonl")
    assert not is_pointer(tmp_path / "missing.jsonl")
    # the rest of the file is never read: a pointer's first line decides
    (tmp_path / "long").write_bytes(POINTER.encode() + b"\xff" * 1_000_000)
    assert is_pointer(tmp_path / "long")


def test_an_item_file_that_is_a_pointer_is_named_so_by_the_parser():
    with pytest.raises(FileParseError) as err:
        parse_file("items.rmbench.jsonl", POINTER.encode())
    assert isinstance(err.value, LfsPointerFile)
    assert str(err.value).startswith("items.rmbench.jsonl: a Git LFS pointer file")
    assert "git lfs pull" in str(err.value) and "JSON" not in str(err.value)


def test_a_suite_file_that_is_a_pointer_is_not_run_and_the_other_files_run(tmp_path):
    pointer(tmp_path / "helpful-base" / "test.jsonl.gz")
    write_jsonl(tmp_path / "harmless-base" / "test.jsonl.gz", [hh("Bad?", "No", "Sure"), hh("Worse?", "No", "Yes")])
    source = DataSource(suite="hh-rlhf", data_dir=str(tmp_path))
    entries = list(HH_RLHF.load(source))
    assert all(isinstance(e, PairItem) for e in entries)
    assert [e.node for e in entries] == ["harmless-base/0", "harmless-base/1"]
    reasons = {n["part"]: n["reason"] for n in source.not_run}
    lfs = reasons["helpful-base"]
    assert str(tmp_path / "helpful-base" / "test.jsonl.gz") in lfs
    assert "Git LFS pointer" in lfs and "git lfs pull" in lfs
    assert [u["part"] for u in source.used] == ["harmless-base"]


def test_a_suite_whose_every_file_is_a_pointer_errors_with_that_message(tmp_path):
    pointer(tmp_path / "helpful-base" / "test.jsonl.gz")
    with pytest.raises(SuiteDataError) as err:
        list(HH_RLHF.load(DataSource(suite="hh-rlhf", data_dir=str(tmp_path))))
    message = str(err.value)
    assert message.startswith(str(tmp_path / "helpful-base" / "test.jsonl.gz") + " is a Git LFS pointer file")
    assert "git lfs pull" in message
    # a whole clone made without git-lfs: one message naming the files
    for folder in ("helpful-online", "harmless-base"):
        pointer(tmp_path / folder / "test.jsonl.gz")
        pointer(tmp_path / folder / "train.jsonl.gz")
    with pytest.raises(SuiteDataError) as err:
        list(HH_RLHF.load(DataSource(suite="hh-rlhf", data_dir=str(tmp_path))))
    message = str(err.value)
    assert "every data file found under" in message and "git lfs pull" in message
    assert "harmless-base/test.jsonl.gz" in message and "train" not in message


def test_a_parquet_pointer_among_files_checked_by_their_columns(tmp_path):
    # rewardbench2 keeps only files with its columns: a pointer's columns cannot be read
    pointer(tmp_path / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(SuiteDataError, match="test-00000-of-00001.parquet is a Git LFS pointer file"):
        list(REWARDBENCH2.load(DataSource(suite="rewardbench2", data_dir=str(tmp_path))))
    write_json(tmp_path / "test.json", [{"id": 1, "prompt": "p", "chosen": ["c"], "rejected": ["r1", "r2", "r3"],
                                         "subset": "Focus", "num_correct": 1}])
    source = DataSource(suite="rewardbench2", data_dir=str(tmp_path))
    entries = list(REWARDBENCH2.load(source))
    assert len(entries) == 1 and not isinstance(entries[0], ItemProblem)
    assert [n["part"] for n in source.not_run] == ["test"] and "git lfs pull" in source.not_run[0]["reason"]


def test_rmbench_reads_its_part_files_when_the_whole_set_is_a_pointer(tmp_path):
    row = {"id": 1, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["x", "y", "z"]}
    pointer(tmp_path / "total_dataset.json")
    write_json(tmp_path / "chat_filtered.json", [row])
    pointer(tmp_path / "math_filtered.json")
    source = DataSource(suite="rmbench", data_dir=str(tmp_path))
    entries = list(RMBENCH.load(source))
    assert [e.node for e in entries] == ["chat/1"]
    math = [n for n in source.not_run if n["part"] == "math"]
    assert len(math) == 1 and "math_filtered.json is a Git LFS pointer" in math[0]["reason"]


GOOD_ITEMS = [{"id": "a", "subset": "chat", "prompt": "hi", "chosen": "hello there, how can I help?", "rejected": "no"},
              {"id": "b", "subset": "chat", "prompt": "bye", "chosen": "goodbye, take care", "rejected": "ok"}]


def test_an_item_file_that_is_a_pointer_is_one_error_item_and_the_others_run(pytester):
    (pytester.path / "good.rmbench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOOD_ITEMS))
    (pytester.path / "big.rmbench.jsonl").write_text(POINTER)
    (pytester.path / "more.rmbench.yaml").write_text(POINTER)
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-report=run.json", "-p", "no:cacheprovider", "-rA")
    out = result.stdout.str()
    assert "Interrupted" not in out and "error during collection" not in out
    report = json.loads((pytester.path / "run.json").read_text())
    outcomes = {i["nodeid"]: i["outcome"] for i in report["items"]}
    assert outcomes == {"good.rmbench.jsonl::chat/a": "correct", "good.rmbench.jsonl::chat/b": "correct",
                        "big.rmbench.jsonl::git-lfs-pointer": "error", "more.rmbench.yaml::git-lfs-pointer": "error"}
    result.stdout.fnmatch_lines(["*big.rmbench.jsonl is a Git LFS pointer file, not the data itself*git lfs pull*"])
    assert "invalid JSON" not in out
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_suite_session_with_a_pointer_file_runs_the_rest_and_reports_it_not_run(pytester):
    data = pytester.mkdir("data")
    pointer(data / "helpful-base" / "test.jsonl.gz")
    write_jsonl(data / "harmless-base" / "test.jsonl.gz", [hh("Bad?", "No, that would hurt someone.", "Sure")])
    result = pytester.runpytest("--rm-bench", "hh-rlhf", f"--rm-data-dir={data}", "--rm-model=builtin:length",
                                "--rm-report=run.json", "-p", "no:cacheprovider")
    report = json.loads((pytester.path / "run.json").read_text())
    assert [(i["nodeid"], i["outcome"]) for i in report["items"]] == [("hh-rlhf::harmless-base/0", "correct")]
    lfs = [n for n in report["datasets"]["hh-rlhf"]["not_run"] if n["part"] == "helpful-base"]
    assert len(lfs) == 1 and "Git LFS pointer" in lfs[0]["reason"] and "git lfs pull" in lfs[0]["reason"]
    assert result.ret == 0


def test_a_suite_session_whose_every_file_is_a_pointer_is_one_short_error(pytester):
    data = pytester.mkdir("data")
    pointer(data / "helpful-base" / "test.jsonl.gz")
    pointer(data / "harmless-base" / "test.jsonl.gz")
    result = pytester.runpytest("--rm-bench", "hh-rlhf", f"--rm-data-dir={data}", "--rm-model=builtin:length",
                                "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*hh-rlhf: every data file found under*is a Git LFS pointer file*git lfs pull*"])
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
