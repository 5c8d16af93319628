import pytest

try:  # pytester's in-process runs drop modules first imported inside them; numpy's C core
    import numpy  # noqa: F401  cannot load twice, so it is imported here, before any run
except ImportError:
    pass


@pytest.fixture
def subprocess_env(monkeypatch):
    """For runpytest_subprocess runs on local models: no Hub, and this session's plugin settings not inherited."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


@pytest.fixture(scope="module")
def one_cpu_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path_factory, monkeypatch):
    """Model fingerprints remember file digests per user: keep the tests' out of the home folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
