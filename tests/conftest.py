import pytest


@pytest.fixture
def subprocess_env(monkeypatch):
    """For runpytest_subprocess runs on local models: no Hub, and this session's plugin settings not inherited."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
