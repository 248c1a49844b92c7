"""The served model: loaded by alias from the registry, cached, hot-reloaded, shadowed.

Where each part lives:

    engines.py   `Engine`, what scores validated rows: sklearn, compiled, pyfunc, rules
    loaded.py    `LoadedModel`, one served version (immutable; a reload builds another)
    loader.py    `load_local`, an MLflow model directory -> LoadedModel, engine chosen
    registry.py  `Registry`, the MLflow client: resolve an alias, download a version
    cache.py     `ModelCache`, local copies, and each alias's last good version
    manager.py   `ModelManager`, the served model, its reload and the poller thread
    shadow.py    `ShadowScorer`, the challenger scoring the champion's rows off the path
"""

from modelwatch.serving.model.cache import ModelCache
from modelwatch.serving.model.loaded import LoadedModel
from modelwatch.serving.model.loader import load_local
from modelwatch.serving.model.manager import ModelManager
from modelwatch.serving.model.registry import AliasNotFound, Registry, RegistryUnavailable
from modelwatch.serving.model.scorers import Engine
from modelwatch.serving.model.shadow import ShadowScorer

__all__ = [
    "AliasNotFound",
    "Engine",
    "LoadedModel",
    "ModelCache",
    "ModelManager",
    "Registry",
    "RegistryUnavailable",
    "ShadowScorer",
    "load_local",
]
