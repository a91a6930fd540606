"""`import caffe` meaning bnface_caffe.pycaffe, for pycaffe scripts and Python layers' modules.

install() enters the aliases in sys.modules: caffe (also as caffe.pycaffe and caffe._caffe),
caffe.proto and caffe.proto.caffe_pb2 (our schema, Caffe's numbering), caffe.io,
caffe.net_spec, caffe.classifier, caffe.draw. Any other caffe.X import fails with one line saying
what is not supported (caffe.coord_map, caffe.detector, ...). A `caffe` already imported
in this process (a real pycaffe) is left alone.
"""
import importlib
import sys

from ..errors import like

ALIASES = {
    "caffe": "bnface_caffe.pycaffe",
    "caffe.pycaffe": "bnface_caffe.pycaffe",
    "caffe._caffe": "bnface_caffe.pycaffe",
    "caffe.proto": "bnface_caffe.proto",
    "caffe.proto.caffe_pb2": "bnface_caffe.proto.caffe_pb2",
    "caffe.classifier": "bnface_caffe.pycaffe.classifier",
    "caffe.io": "bnface_caffe.pycaffe.io",
    "caffe.net_spec": "bnface_caffe.pycaffe.net_spec",
    "caffe.draw": "bnface_caffe.pycaffe.draw",
}
UNSUPPORTED = {
    "caffe.coord_map": "caffe.coord_map (crop offsets for FCN nets) is not supported",
    "caffe.detector": "caffe.detector (R-CNN window detection) is not supported",
    "caffe.imagenet": "caffe.imagenet (the ILSVRC mean file) is not shipped; load your own "
                      "mean with caffe.io",
}


class _Refuser:
    """A finder for caffe.* names that are not aliases: one clear ImportError."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("caffe.") or fullname in sys.modules:
            return None
        if sys.modules.get("caffe") is not importlib.import_module("bnface_caffe.pycaffe"):
            return None
        top = ".".join(fullname.split(".")[:2])
        if top in UNSUPPORTED:
            reason = UNSUPPORTED[top]
        elif top in ALIASES:
            reason = f"{top} is not available in this bnface-caffe ({ALIASES[top]} is missing)"
        else:
            known = ", ".join(sorted(n for n in ALIASES if n.count(".") == 1))
            reason = f"{fullname} is not part of bnface-caffe's pycaffe (it has {known})"
        raise like(ModuleNotFoundError, f"import {fullname}: {reason}")


_REFUSER = _Refuser()


def install():
    """Make `import caffe` and its submodules resolve to bnface_caffe.pycaffe."""
    present = sys.modules.get("caffe")
    ours = importlib.import_module("bnface_caffe.pycaffe")
    if present is not None and present is not ours:
        return
    for alias, target in ALIASES.items():
        try:
            sys.modules[alias] = importlib.import_module(target)
        except ModuleNotFoundError as err:
            if err.name != target:
                raise
    if _REFUSER not in sys.meta_path:
        sys.meta_path.insert(0, _REFUSER)


def installed():
    return sys.modules.get("caffe") is importlib.import_module("bnface_caffe.pycaffe")
