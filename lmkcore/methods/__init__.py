"""One module per method; `METHODS` maps a checkpoint's method name to its class.

A method defined outside this package registers itself when its module is imported; it is named by
its import path, `package.module:ClassName` (`method_path`), which checkpoints record so that
`method_class` can import it again.
"""
import importlib

from .base import Method

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    METHODS[cls.name] = cls
    return cls


def method_path(cls: type[Method]) -> str:
    """`package.module:ClassName`, the import path of a method class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def method_class(name: str, path: str | None = None) -> type[Method]:
    """The class of a registered method `name`, or of the import path `package.module:ClassName` (given as
    `name` or, for a name not registered yet, as `path`). Its module is imported, which registers it; a class
    named by its path is also registered under its `name`, so that its checkpoints load by name."""
    spec = name if ":" in name else (path if name not in METHODS and path else None)
    if spec is None:
        if name not in METHODS:
            raise KeyError(f"unknown method {name!r}; known: {sorted(METHODS)} (or an import path "
                           "package.module:ClassName)")
        return METHODS[name]
    module, _, qualname = spec.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise KeyError(f"method {spec!r}: cannot import {module!r} ({e})") from None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise KeyError(f"method {spec!r}: {module} has no Method subclass {qualname!r}")
    if METHODS.setdefault(obj.name, obj) is not obj:
        raise KeyError(f"method {spec!r}: its name {obj.name!r} is registered to {METHODS[obj.name].__module__}")
    return obj


def build(name: str, **config) -> Method:
    """A fresh (untrained) method from its name (or import path) and config fields."""
    cls = method_class(name)
    return cls(cls.config_class(**config))


from . import autolink  # noqa: E402,F401  (registers itself)
from . import contrastive  # noqa: E402,F401  (registers itself)
from . import partbased  # noqa: E402,F401  (registers itself)
from . import fgbg  # noqa: E402,F401  (registers itself)
from . import selftrain  # noqa: E402,F401  (registers itself)

__all__ = ["Method", "METHODS", "build", "method_class", "method_path", "register"]
