"""Where suites' rows come from: the datasets cache (revision recorded), local files, errors."""

import gzip
import json

import pytest

from pytest_rmbench.suites.base import DataSource, SuiteDataError, read_rows

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def cached_dataset(tmp_path):
    """A dataset as `datasets` keeps it in its cache: arrow files under a folder named by the commit."""
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "cache" / "org___bench" / "default" / "0.0.0" / SHA
    datasets.Dataset.from_dict({"prompt": ["p1", "p2", "p3"], "chosen": ["a", "b", "c"]}).save_to_disk(str(folder))
    return datasets.load_from_disk(str(folder))


def test_hub_records_name_split_revision_and_rows(monkeypatch, cached_dataset):
    import datasets

    calls = []

    def fake_load(name, config=None, **kwargs):
        calls.append((name, config, kwargs))
        return cached_dataset

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    source = DataSource(suite="bench")
    rows = source.hub("org/bench", None, "test", part="test")
    assert calls == [("org/bench", None, {"split": "test"})]
    assert [r["prompt"] for r in rows] == ["p1", "p2", "p3"] and len(rows) == 3
    assert list(rows) == list(rows)  # re-iterable
    assert rows.columns == ["prompt", "chosen"]
    assert source.used == [{"name": "org/bench", "config": None, "split": "test", "part": "test", "revision": SHA, "rows": 3}]


def test_a_pinned_revision_is_passed_and_recorded(monkeypatch, cached_dataset):
    import datasets

    seen = {}
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None, **kw: seen.update(kw) or cached_dataset)
    source = DataSource(suite="bench", revision="v1.2")
    source.hub("org/bench", "cfg", "test")
    assert seen == {"split": "test", "revision": "v1.2"}
    assert source.used[0]["revision"] == "v1.2" and source.used[0]["config"] == "cfg"


def test_every_split_of_a_dataset_dict(monkeypatch, cached_dataset):
    import datasets

    both = datasets.DatasetDict({"train": cached_dataset, "test": cached_dataset.select([0])})
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None, **kw: both)
    rows = DataSource(suite="bench").hub("org/bench")
    assert len(rows) == 4 and [r["prompt"] for r in rows] == ["p1", "p2", "p3", "p1"]


def test_a_load_failure_names_the_dataset_and_the_way_to_fetch_it(monkeypatch):
    import datasets

    def fail(name, config=None, **kwargs):
        raise ConnectionError("Couldn't reach 'org/bench' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SuiteDataError) as info:
        DataSource(suite="bench").hub("org/bench", "cfg", "test")
    message = str(info.value)
    assert message.startswith("dataset 'org/bench' (config 'cfg') is not in the local cache and HF_HUB_OFFLINE is set")
    assert "datasets.load_dataset('org/bench', 'cfg', split='test')" in message and "--rm-data-dir" in message


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.jsonl.gz", "rows.json", "rows.json.gz", "rows.parquet"])
def test_local_files_of_every_format(tmp_path, name):
    data = [{"id": 1, "prompt": "p", "chosen": ["a", "b"]}, {"id": 2, "prompt": "q", "chosen": ["c"]}]
    path = tmp_path / name
    if name.endswith(".parquet"):
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(data), str(path))
    else:
        text = "".join(json.dumps(r) + "\n" for r in data) if ".jsonl" in name else json.dumps(data)
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    rows = read_rows(str(path))
    assert list(rows) == data and rows.columns == ["id", "prompt", "chosen"]


def test_a_broken_local_file_is_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(SuiteDataError, match=r"rows.jsonl:2: invalid JSON"):
        read_rows(str(path))


def test_local_files_match_by_name_anywhere_under_the_folder(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("data/test-00000.parquet", "data/train-00000.parquet", "README.md", "test.jsonl"):
        (tmp_path / name).write_text("")
    source = DataSource(suite="s", data_dir=str(tmp_path))
    assert [p[len(str(tmp_path)) + 1:] for p in source.local_files("test*.parquet", "test.jsonl")] == [
        "data/test-00000.parquet", "test.jsonl"]


def test_made_up_node_names_never_collide_with_real_ones():
    from pytest_rmbench.suites.base import NodeNames, RowError

    names = NodeNames()
    assert names.unique("q1-row5", 0) == "q1-row5"
    assert names.unique("q1", 1) == "q1"
    assert names.unique("q1", 5) == "q1-row5-2"  # "q1-row5" is a real row's name already
    with pytest.raises(RowError):
        names.claim("a\rb", "row 9")


def test_two_copies_of_a_rag_subset_file_are_refused(tmp_path):
    from pytest_rmbench.suites.ragrewardbench import RAG_REWARDBENCH

    row = {"id": 1, "question": "q", "prompt": "refs", "chosen": "a", "reject": "b"}
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "reason.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(SuiteDataError, match="2 files named 'reason.jsonl'"):
        list(RAG_REWARDBENCH.load(DataSource(suite="rag-rewardbench", data_dir=str(tmp_path))))


def test_hh_rlhf_reads_each_hub_folder_as_its_subset(monkeypatch, tmp_path):
    import datasets

    from pytest_rmbench.suites.hhrlhf import FOLDERS, HH_RLHF

    calls = []

    def fake_load(name, config=None, **kwargs):
        calls.append(kwargs)
        row = {"chosen": f"\n\nHuman: hi from {kwargs['data_dir']}\n\nAssistant: hello there",
               "rejected": f"\n\nHuman: hi from {kwargs['data_dir']}\n\nAssistant: go away"}
        return datasets.Dataset.from_list([row])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    source = DataSource(suite="hh-rlhf")
    items = list(HH_RLHF.load(source))
    assert [c["data_dir"] for c in calls] == list(FOLDERS) and all(c["split"] == "test" for c in calls)
    assert [i.node for i in items] == [f"{f}/0" for f in FOLDERS]
    assert [u["data_dir"] for u in source.used] == list(FOLDERS)
