"""Choosing the kind, and the pairwise-judge path through the engine, on conftest-defined kinds."""

import importlib.metadata
import json
from types import SimpleNamespace

import pytest

from pytest_rmbench.items import ScoreResult, judge_both_orders
from pytest_rmbench.models import kinds
from pytest_rmbench.models import resolve as resolve_module
from pytest_rmbench.models.base import Capabilities, ModelLoadError, ModelSpec, capabilities, close_model, model_versions
from pytest_rmbench.models.kinds import detect_kind, pairwise_hint
from pytest_rmbench.models.resolve import ResolvedModel, resolve
from pytest_rmbench.registry import Registry

JUDGE_CONFTEST = """
import pytest
from pytest_rmbench.models.base import Prepared

class Judge:
    kind = "toy-judge"; dtype = "n/a"; device = "cpu"; pairwise = True
    def __init__(self, mode):
        self.name = mode
        self.mode = mode
    def prepare(self, requests):
        return [Prepared(r, len(r.answer_a) + len(r.answer_b)) for r in requests]
    def score_batch(self, batch):
        if self.mode == "first":  # position bias: always prefers whatever is shown first
            return [1.0 for p in batch]
        if self.mode == "tie":
            return [0.0 for p in batch]
        return [float(len(p.request.answer_a) - len(p.request.answer_b)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    if spec.model.startswith("judge:"):
        return Judge(spec.model.split(":", 1)[1])
"""

ITEMS = "\n".join(json.dumps(r) for r in [
    {"id": 1, "subset": "s", "prompt": "q1", "chosen": "a long answer", "rejected": "short"},
    {"id": 2, "subset": "s", "prompt": "q2", "chosen": "tiny", "rejected": "a long wrong answer"},
]) + "\n"


@pytest.fixture
def judged(pytester):
    pytester.makeconftest(JUDGE_CONFTEST)
    (pytester.path / "j.rmbench.jsonl").write_text(ITEMS)
    return pytester


def run(pytester, model):
    result = pytester.runpytest(f"--rm-model={model}", "--rm-report=run.json", "--rm-no-store")
    return result, json.loads((pytester.path / "run.json").read_text())


def test_a_consistent_judge_is_scored_in_both_orders(judged):
    result, data = run(judged, "judge:length")
    first, second = data["items"]
    assert first["outcome"] == "correct" and first["verdicts"] == ["A>B", "B>A"]
    assert second["outcome"] == "incorrect" and second["verdicts"] == ["B>A", "A>B"]
    assert data["judge"] == {"n": 2, "inconsistent": 0, "inconsistency": 0.0}


def test_a_position_biased_judge_is_wrong_and_inconsistent(judged):
    result, data = run(judged, "judge:first")
    assert [i["outcome"] for i in data["items"]] == ["incorrect", "incorrect"]
    assert data["items"][0]["verdicts"] == ["A>B", "A>B"]
    assert data["judge"]["inconsistency"] == 1.0


def test_ties_in_both_orders_are_wrong(judged):
    _, data = run(judged, "judge:tie")
    assert [i["outcome"] for i in data["items"]] == ["incorrect", "incorrect"]


@pytest.mark.parametrize(
    "first, second, outcome",
    [(1.0, -1.0, "correct"), (1.0, 0.0, "correct"), (0.0, -2.0, "correct"), (0.0, 0.0, "incorrect"),
     (1.0, 1.0, "incorrect"), (-1.0, 1.0, "incorrect"), (-1.0, 0.0, "incorrect")],
)
def test_judgebench_rule(first, second, outcome):
    assert judge_both_orders(ScoreResult(first), ScoreResult(second)).outcome == outcome


def test_kind_detection(tmp_path):
    assert detect_kind(ModelSpec("builtin:length")) == "builtin"
    assert detect_kind(ModelSpec("scores:run.jsonl")) == "scores"
    assert detect_kind(ModelSpec("http://127.0.0.1:8000")) == "http"
    assert detect_kind(ModelSpec("https://rm.example.com")) == "http"
    assert detect_kind(ModelSpec("anything", kind="dpo")) == "dpo"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForSequenceClassification"]}))
    assert detect_kind(ModelSpec(str(tmp_path))) == "classifier"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ModelLoadError, match="--rm-kind dpo.*--rm-kind judge"):
        detect_kind(ModelSpec(str(tmp_path)))
    assert pairwise_hint(ModelSpec("x", kind="judge")) is True
    assert pairwise_hint(ModelSpec("builtin:length")) is False
    assert pairwise_hint(ModelSpec("http://h:1")) is None and pairwise_hint(ModelSpec("x", kind="mine")) is None
    assert pairwise_hint(ModelSpec("not-on-this-machine")) is None
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    assert pairwise_hint(ModelSpec(str(tmp_path))) is False


def test_help_lists_the_kinds(pytester):
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())  # help lines wrap
    assert "--rm-kind=KIND model kind: classifier, dpo, judge, prm, preference, gpm, vision, grader, http, scores, builtin" in text
    assert "--rm-beta=BETA dpo: beta" in text


def test_ambiguous_causal_lm_is_one_clear_error(pytester, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (pytester.path / "j.rmbench.jsonl").write_text(ITEMS)
    result = pytester.runpytest(f"--rm-model={tmp_path}", "--rm-no-store")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*could be scored as a DPO policy (--rm-kind dpo), a pairwise judge*"])


def config_json(folder, *architectures):
    (folder / "config.json").write_text(json.dumps({"architectures": list(architectures)}))
    return str(folder)


def test_resolved_builtin():
    r = resolve(ModelSpec("builtin:length"))
    assert isinstance(r, ResolvedModel) and r.error is None
    assert (r.kind, r.pairwise, r.local, r.one_worker_per_gpu, r.display_name) == ("builtin", False, False, False, "builtin:length")


def test_resolved_http_hides_credentials_and_uses_no_gpu():
    r = resolve(ModelSpec("http://user:secret@host:8000/v1?model=m"))
    assert r.kind == "http" and r.pairwise is None and not r.local and not r.one_worker_per_gpu
    assert r.display_name == "http://host:8000/v1?model=m" and "secret" not in repr(r.display_name)
    assert r.spec.model == "http://user:secret@host:8000/v1?model=m"  # the spec keeps what the user gave


def test_resolved_scores_file(tmp_path):
    r = resolve(ModelSpec(f"scores:{tmp_path / 'run.jsonl'}"))
    assert (r.kind, r.pairwise, r.local, r.one_worker_per_gpu, r.error) == ("scores", False, False, False, None)


def test_resolved_local_classifier_folder(tmp_path):
    r = resolve(ModelSpec(config_json(tmp_path, "LlamaForSequenceClassification")))
    assert (r.kind, r.pairwise, r.local, r.one_worker_per_gpu, r.error) == ("classifier", False, True, True, None)
    assert r.display_name == str(tmp_path) and r.architectures == ("LlamaForSequenceClassification",)


def test_resolved_tiny_classifier(tmp_path):
    """A real (tiny) saved model, as tests/tinymodels.py builds them."""
    pytest.importorskip("transformers")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import tinymodels
    finally:
        sys.path.remove(str(Path(__file__).parent))
    folder = tinymodels.build_tiny_llama(tmp_path / "llama")
    r = resolve(ModelSpec(str(folder)))
    assert (r.kind, r.local, r.one_worker_per_gpu, r.pairwise, r.error) == ("classifier", True, True, False, None)


def test_resolved_prm_judge_and_plugin_kinds(tmp_path):
    r = resolve(ModelSpec(config_json(tmp_path, "Qwen2ForProcessRewardModel")))
    assert (r.kind, r.pairwise, r.local, r.one_worker_per_gpu) == ("prm", False, True, True)
    assert resolve(ModelSpec("any", kind="judge")).pairwise is True
    mine = resolve(ModelSpec("any", kind="mine"))  # a kind a plugin adds: it runs here, maybe on a GPU
    assert (mine.kind, mine.pairwise, mine.local, mine.one_worker_per_gpu) == ("mine", None, False, True)
    assert resolve(ModelSpec("not-on-this-machine")).pairwise is None  # a guess: it may be a plugin's


def test_causal_lm_under_auto_is_an_error_kept_not_raised(tmp_path):
    spec = ModelSpec(config_json(tmp_path, "LlamaForCausalLM"))
    r = resolve(spec)  # does not raise
    assert r.kind is None and r.pairwise is False and not r.local
    assert "--rm-kind dpo" in r.error and "--rm-kind judge" in r.error
    with pytest.raises(ModelLoadError, match="causal language model"):
        r.require_kind()
    config = SimpleNamespace(stash=pytest.Stash())
    with pytest.raises(ModelLoadError, match="causal language model"):  # surfaces when the model is built
        kinds.pytest_rmbench_make_model(config=config, spec=spec)
    with pytest.raises(ModelLoadError, match="causal language model"):  # or its scores are looked up
        kinds.pytest_rmbench_model_fingerprint(config=config, spec=spec)
    assert resolve(ModelSpec(spec.model, kind="dpo")).error is None  # named: no guess needed


@pytest.fixture
def config_reads(monkeypatch):
    """The config.json files resolve opens."""
    reads = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        if str(path).endswith("config.json"):
            reads.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(resolve_module, "open", counting_open, raising=False)
    return reads


def test_resolve_reads_config_json_once(tmp_path, config_reads):
    resolve(ModelSpec(config_json(tmp_path, "BertForSequenceClassification")))
    assert len(config_reads) == 1
    resolve(ModelSpec(config_json(tmp_path, "LlamaForCausalLM")))  # the causal-LM check reads the same text
    assert len(config_reads) == 2


def test_one_configure_reads_config_json_once(tmp_path, config_reads):
    """The plugin's resolve(spec, config) and the built-in hooks share one resolution per run."""
    spec = ModelSpec(config_json(tmp_path, "LlamaForCausalLM"))
    config = SimpleNamespace(stash=pytest.Stash())
    first = resolve(spec, config)
    for hook in (kinds.pytest_rmbench_make_model, kinds.pytest_rmbench_model_fingerprint):
        with pytest.raises(ModelLoadError):
            hook(config=config, spec=spec)
    assert resolve(spec, config) is first and len(config_reads) == 1
    other = ModelSpec(spec.model, kind="classifier")  # another spec is resolved afresh
    assert resolve(other, config).kind == "classifier"
    assert resolve(ModelSpec(spec.model), SimpleNamespace(stash=pytest.Stash())) is not first  # another run: read again
    assert len(config_reads) == 2


def test_kinds_come_from_one_registry():
    assert kinds.KIND_NAMES == ("classifier", "dpo", "judge", "prm", "preference", "gpm", "vision", "grader", "http",
                                "scores", "builtin")
    assert kinds.MODEL_KINDS.builtin_names() == list(kinds.KIND_NAMES)
    from pytest_rmbench.models import builtin

    assert kinds.model_builder("builtin") is builtin.build
    model = kinds.pytest_rmbench_make_model(config=None, spec=ModelSpec("builtin:length"))
    assert model.name == "builtin:length"


def test_unknown_kind_names_the_kinds_there_are():
    with pytest.raises(ModelLoadError) as info:
        kinds.pytest_rmbench_make_model(config=None, spec=ModelSpec("x", kind="nosuch"))
    assert str(info.value).startswith(
        "unknown model kind 'nosuch'; available: classifier, dpo, judge, prm, preference, gpm, vision, grader, http, scores, builtin")


def test_unknown_kind_in_a_session(pytester):
    (pytester.path / "j.rmbench.jsonl").write_text(ITEMS)
    result = pytester.runpytest("--rm-model=x", "--rm-kind=nosuch", "--rm-no-store")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*unknown model kind 'nosuch'; available: classifier, dpo, judge, prm, preference, gpm, vision, grader, http, scores, builtin*"])


TOY_KIND = """
from pytest_rmbench.models.base import Prepared

class Toy:
    name = "toy"; kind = "toy"; dtype = "n/a"; device = "cpu"
    def __init__(self, spec):
        self.spec = spec
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        return [float(len(p.request.answer)) for p in batch]

def build(spec):
    return Toy(spec)
"""


@pytest.fixture
def toy_kind(pytester, monkeypatch):
    """A third-party package's kind 'toy', declared through the pytest_rmbench.model_kinds entry points."""
    pytester.makepyfile(toy_rm_kind=TOY_KIND)
    pytester.syspathinsert()
    real = importlib.metadata.entry_points

    def entry_points(**params):
        if params.get("group") == "pytest_rmbench.model_kinds":
            return [importlib.metadata.EntryPoint("toy", "toy_rm_kind:build", "pytest_rmbench.model_kinds")]
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry = Registry("model kind", "pytest_rmbench.model_kinds", kinds.MODEL_KINDS._targets)
    monkeypatch.setattr(kinds, "MODEL_KINDS", registry)
    return registry


def test_a_third_party_kind_builds_through_the_registry(toy_kind):
    model = kinds.pytest_rmbench_make_model(config=None, spec=ModelSpec("anything", kind="toy"))
    assert model.kind == "toy" and model.spec.model == "anything"
    assert capabilities(model) == Capabilities(pairwise=False, steps=False)  # it says nothing: the defaults
    assert "toy" in toy_kind.names()
    with pytest.raises(ModelLoadError, match=r"unknown model kind 'nosuch'; available: .*builtin, .*toy"):
        kinds.model_builder("nosuch")
    r = resolve(ModelSpec("anything", kind="toy"))
    assert r.pairwise is None and not r.local and r.one_worker_per_gpu  # only the loaded model can tell


def test_a_third_party_kind_in_a_session(pytester, toy_kind):
    (pytester.path / "j.rmbench.jsonl").write_text(ITEMS)
    result = pytester.runpytest("--rm-model=anything", "--rm-kind=toy", "--rm-report=run.json", "--rm-no-store")
    data = json.loads((pytester.path / "run.json").read_text())
    assert [i["outcome"] for i in data["items"]] == ["correct", "incorrect"], result.stdout.str()


def test_user_adapters_get_defaults_from_the_accessors():
    class Bare:
        name = kind = "bare"; dtype = "n/a"; device = "cpu"

    bare = Bare()
    assert capabilities(bare) == Capabilities(False, False)
    assert model_versions(bare) == {}
    close_model(bare)  # nothing to close
    close_model(None)
    closed = []

    class Versioned(Bare):
        pairwise = True
        versions = {"lib": 1}

        def close(self):
            closed.append(self)

    v = Versioned()
    assert capabilities(v).pairwise and model_versions(v) == {"lib": "1"}
    close_model(v)
    assert closed == [v]


@pytest.mark.parametrize("kind", ["builtin", "classifier", "dpo", "judge", "prm", "http", "scores"])
def test_builtin_adapters_state_the_protocol(kind):
    import importlib

    from pytest_rmbench.models.base import RewardModelAdapter

    module = importlib.import_module(f"pytest_rmbench.models.{kind}")
    cls = next(v for v in vars(module).values() if isinstance(v, type) and getattr(v, "kind", None) == kind
               and v.__module__ == module.__name__)
    for name in ("pairwise", "steps"):
        assert isinstance(vars(cls).get(name), bool), (cls, name)  # a class attribute of its own
    annotations = getattr(cls, "__annotations__", {})
    assert "versions" in vars(cls) or "versions" in annotations
    assert callable(vars(cls).get("close"))
    assert all(hasattr(cls, a) or a in annotations for a in RewardModelAdapter.__annotations__)
