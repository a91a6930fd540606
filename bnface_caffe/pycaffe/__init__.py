"""pycaffe on the engine: what `import caffe` gives a script written for BVLC Caffe's Python
interface (python/caffe/__init__.py's names), computed by bnface-caffe's engine.

    import bnface_caffe.pycaffe as caffe          # or run the script unmodified with
    net = caffe.Net("deploy.prototxt", caffe.TEST, weights="w.caffemodel")
                                                  # python -m bnface_caffe.pycaffe script.py
Not supported (one clear error each): multi-GPU through pycaffe (NCCL), caffe.coord_map,
caffe.Detector.
"""
from .. import proto
from ..engine.layers.python import PythonLayer as Layer
from ..proto.caffe_pb2 import TEST, TRAIN
from .classifier import Classifier, Detector
from .mode import (NCCL, Timer, has_nccl, init_log, layer_type_list, log, set_device,
                   set_mode_cpu, set_mode_gpu, set_multiprocess, set_random_seed,
                   set_solver_count, set_solver_rank, solver_count, solver_rank)
from .net import Net
from .solver import (AdaDeltaSolver, AdaGradSolver, AdamSolver, NesterovSolver,
                     RMSPropSolver, SGDSolver, get_solver)

__version__ = "1.0.0"   # the pycaffe interface reproduced (BVLC Caffe 1.0.0's)

from . import io  # noqa: F401,E402
from .net_spec import NetSpec, layers, params, to_proto  # noqa: F401,E402
