"""pycaffe's public API on the engine (`import caffe` for unmodified pycaffe scripts)."""
from . import io  # noqa: F401
from .net_spec import layers, params, NetSpec, to_proto  # noqa: F401
