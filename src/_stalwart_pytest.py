"""
The entry point of stalwart's pytest plugin (``pytest11``: ``stalwart``).

The plugin itself is :mod:`stalwart._pytest_plugin`.  This module is
top-level and imports nothing of stalwart, because pytest imports
entry-point plugins before pytest-cov starts measuring: importing stalwart
here would hide its import-time code from coverage.  The plugin is
registered from the first hook that runs after measuring starts, still
before the command line is parsed, so that its options exist.
"""

from __future__ import annotations

import pytest


_NAME = "stalwart.plugin"


def _register(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(_NAME):
        # Here, not at the top: see the module's docstring.
        from stalwart import _pytest_plugin  # noqa: PLC0415

        config.pluginmanager.register(_pytest_plugin, _NAME)


def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """
    Register the plugin, once pytest-cov (a ``tryfirst`` hook) has started.
    """
    _register(early_config)


def pytest_configure(config: pytest.Config) -> None:
    """
    Register the plugin if this module was loaded too late for the hook
    above (from ``pytest_plugins`` in a conftest, with plugin autoloading
    off); ``--stalwart-no-real-sleep`` is then unknown, the rest works.
    """
    _register(config)
