"""The runnable examples in every module's docstring."""

import doctest
import importlib
import warnings

import pytest

MODULES = ["monitoring.drift.profile", "monitoring.drift.stattests", "monitoring.drift.detect",
           "monitoring.drift.prediction", "monitoring.integrity", "monitoring.multivariate",
           "monitoring.performance", "monitoring.concept", "monitoring.cli", "training.calibration",
           "monitoring.service.alerting", "serving.compiled", "serving.store.batch"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
