"""Hook specifications of pytest-rmbench, added through `pytest_addhooks`.

Implement them in a conftest.py or a plugin. The built-in model kinds are themselves
`trylast` implementations of `pytest_rmbench_make_model`, so a user's implementation
runs first and wins by returning an adapter.
"""

import pytest


@pytest.hookspec(firstresult=True)
def pytest_rmbench_make_model(config, spec):
    """Build the adapter that scores (prompt, answer) sequences.

    :param config: the pytest config.
    :param spec: a :class:`pytest_rmbench.models.ModelSpec` (``spec.model`` is the
        ``--rm-model`` value, ``spec.kind`` the ``--rm-kind`` value or "auto").
    :returns: an object with ``name``, ``kind``, ``dtype`` and ``device`` attributes and the
        methods ``prepare(requests) -> list[Prepared]`` and ``score_batch(batch) -> list[float]``
        (see :class:`pytest_rmbench.models.RewardModelAdapter`), or None to let another
        implementation decide. Raise :class:`pytest_rmbench.models.ModelLoadError` with a
        message for the user when the model cannot be built.
    """


@pytest.hookspec(firstresult=True)
def pytest_rmbench_model_fingerprint(config, spec):
    """A string that changes whenever the model's scores could change, or None.

    It keys the persistent score cache, and is computed WITHOUT loading the model (a fully
    cached run never loads it). Return None for a model whose scores must not be cached.
    The built-in implementation covers transformers classifiers (config and tokenizer
    files by content, weight files by name, size and modification time, dtype, max
    length, formatting rules, kind and seed); builtin:* models are not cached.
    """


@pytest.hookspec(firstresult=True)
def pytest_rmbench_make_suite(config, name):
    """The benchmark suite called `name` (from ``--rm-bench NAME``), or None.

    :returns: an object with ``name`` and ``headline`` attributes and the methods
        ``load(source) -> iterable of items`` (each a :class:`pytest_rmbench.items.Item`, or an
        :class:`pytest_rmbench.items.files.ItemProblem` for a bad row), ``sections(subsets) -> dict``
        and ``score(results) -> dict | None`` (see :class:`pytest_rmbench.suites.Suite`).
        The built-in suites are trylast implementations: a user's suite of the same name wins.
    """
