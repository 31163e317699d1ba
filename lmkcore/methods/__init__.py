"""One module per method; `METHODS` maps a checkpoint's method name to its class."""
from .base import Method

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    METHODS[cls.name] = cls
    return cls


def build(name: str, **config) -> Method:
    """A fresh (untrained) method from its name and config fields."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    cls = METHODS[name]
    return cls(cls.config_class(**config))


from . import autolink  # noqa: E402,F401  (registers itself)
from . import contrastive  # noqa: E402,F401

__all__ = ["Method", "METHODS", "build", "register"]
