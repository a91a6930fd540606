"""tools/train.py: train a Caffe solver prototxt, as `caffe train` does.

    python tools/train.py SOLVER.prototxt [--backend auto|caffe|engine] [--gpu ID[,ID..]|all]
        [--weights A.caffemodel[,B..]] [--snapshot X.solverstate] [--log FILE] [--fast]
    torchrun --nproc_per_node=N -- tools/train.py SOLVER.prototxt ...   # N processes, one net
    (the "--" keeps torchrun from reading --log as its own --log-dir)

Exit status: 0 done (or stopped by a signal after its snapshot), 1 the loss diverged,
2 bad input.
"""
import argparse
from contextlib import nullcontext
import os
import subprocess
import sys

from .. import backends, glog
from ..engine import solver_setup, trainlog
from ..engine.distributed import launched_by_torchrun
from ..engine.loop import TrainingDiverged
from ..engine.signals import EFFECTS
from ..errors import UserError
from ..proto import caffe_pb2


def parser():
    p = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("solver", help="solver prototxt (paths inside are relative to where you run)")
    p.add_argument("--backend", default="auto", choices=backends.BACKENDS,
                   help="caffe: real Caffe via pycaffe; engine: ours; auto: caffe if `import "
                        "caffe` works (default)")
    p.add_argument("--gpu", help="GPU id, comma-separated ids, or 'all' (several GPUs: one "
                                 "process each, effective batch = batch_size x GPUs)")
    p.add_argument("--weights", help="caffemodel(s), comma-separated, to fine-tune from")
    p.add_argument("--snapshot", help="a .solverstate to resume from")
    p.add_argument("--log", help="also write the log to this file (Caffe's glog format)")
    p.add_argument("--fast", action="store_true",
                   help="engine only: the opt-in fast mode (TF32/channels-last/...; not "
                        "bit-faithful to Caffe)")
    p.add_argument("--sigint-effect", "--sigint_effect", default="stop", choices=EFFECTS)
    p.add_argument("--sighup-effect", "--sighup_effect", default="snapshot", choices=EFFECTS)
    p.add_argument("--level", type=int, default=0, help="train net NetState level")
    p.add_argument("--stage", default="", help="train net NetState stages, comma-separated")
    return p


def parse_gpus(text):
    """None (no --gpu), or the list of CUDA device ids."""
    if text is None:
        return None
    import torch
    available = torch.cuda.device_count()
    if text == "all":
        ids = list(range(available))
    else:
        try:
            ids = [int(t) for t in text.split(",")]
        except ValueError:
            raise UserError(f"--gpu {text}: give a device id, comma-separated ids, or 'all'") from None
    if not ids or any(i < 0 or i >= available for i in ids):
        raise UserError(f"--gpu {text}: {'no' if not available else available} CUDA device"
                        f"{'s' if available != 1 else ''} visible here; drop --gpu to train on "
                        "the CPU")
    return ids


def engine_device(param, gpu_ids):
    """cpu or cuda:N, with caffe train's rule: no --gpu means the CPU unless the solver
    explicitly says solver_mode: GPU (then device_id). Under torchrun, the local rank's GPU."""
    import torch
    if launched_by_torchrun():
        wants_gpu = gpu_ids is not None or (param.HasField("solver_mode")
                                            and param.solver_mode == caffe_pb2.SolverParameter.GPU)
        if wants_gpu and torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        return "cpu"
    if gpu_ids:
        return f"cuda:{gpu_ids[0]}"
    if param.HasField("solver_mode") and param.solver_mode == caffe_pb2.SolverParameter.GPU:
        if torch.cuda.is_available():
            return f"cuda:{param.device_id}"
        glog.log.warning("caffe.cpp:190", "the solver asks for solver_mode: GPU but no CUDA "
                                          "device is available; training on the CPU")
    return "cpu"


def relaunch_with_torchrun(argv, gpu_ids):
    """--gpu with several ids, not under torchrun: run one process per GPU via torchrun."""
    env = dict(os.environ)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    physical = [visible.split(",")[i] for i in gpu_ids] if visible else [str(i) for i in gpu_ids]
    env["CUDA_VISIBLE_DEVICES"] = ",".join(physical)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # "--": torchrun's own parser would otherwise take options like --log for its --log-dir.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={len(gpu_ids)}", "--", os.path.join(root, "tools", "train.py")]
    cmd += list(argv)
    return subprocess.call(cmd, env=env)


def log_device(device):
    if device == "cpu":
        trainlog.use_cpu()
        return
    import torch
    count = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if launched_by_torchrun() else 1
    ids = list(range(count)) if count > 1 else [int(device.split(":")[1])]
    trainlog.using_gpus(ids, [torch.cuda.get_device_name(i) for i in ids])


class ProgressBar:
    """Iterations, ETA, last loss and test accuracy on an interactive terminal; log lines
    are printed above it (they go through tqdm.write instead of straight to stderr)."""

    def __init__(self, max_iter):
        self.max_iter, self.bar, self.accuracy = max_iter, None, None

    def write(self, line):
        from tqdm import tqdm
        tqdm.write(line.rstrip("\n"), file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def iteration(self, it, loss):
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=self.max_iter, initial=max(it - 1, 0), file=sys.stderr,
                            unit="it", dynamic_ncols=True, leave=False)
        self.bar.update(it - self.bar.n)
        post = {"loss": f"{loss:.4g}"}
        if self.accuracy is not None:
            post["acc"] = f"{self.accuracy:.4f}"
        self.bar.set_postfix(post, refresh=False)

    def tested(self, i, outputs):
        for name, value in outputs.items():
            if "acc" in name:
                self.accuracy = value
                break


def main(argv):
    args = parser().parse_args(argv)
    if args.snapshot and args.weights:
        raise UserError("give --snapshot to resume training or --weights to fine-tune, not both")
    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        glog.log.stderr = False          # only the root solver logs, as in Caffe
    backend = backends.resolve(args.backend)
    gpu_ids = parse_gpus(args.gpu)
    if backend == "engine" and gpu_ids and len(gpu_ids) > 1 and not launched_by_torchrun():
        return relaunch_with_torchrun(argv, gpu_ids)
    if args.log and rank == 0 and backend == "engine":
        glog.log.add_file(args.log)
    bar = None
    try:
        with (backends.stderr_also_to(args.log) if backend == "caffe" else nullcontext()):
            # The solver, its nets and LMDBs are checked, silently, before anything is
            # logged or started; then read again to log what Caffe logs while reading.
            param = solver_setup.read_solver(args.solver, log=False)
            train_param, _ = solver_setup.train_net(param, args.solver)
            solver_setup.check_data_sources([(train_param, f"{args.solver}: train net")]
                                            + solver_setup.test_nets(param, args.solver))
            if rank == 0 and backend == "engine":   # (pycaffe logs this itself)
                param = solver_setup.read_solver(args.solver, log=True)
            if rank == 0 and sys.stderr.isatty() and backend == "engine":
                bar = ProgressBar(param.max_iter)
                glog.log.stderr = False
                glog.log.files.append(bar)
            if backend == "caffe":
                from ..engine.train import TrainOptions
                opts = TrainOptions(args.solver, args.weights, args.snapshot, fast=args.fast,
                                    sigint_effect=args.sigint_effect,
                                    sighup_effect=args.sighup_effect)
                return backends.train_with_pycaffe(opts, param, gpu_ids or ())
            return _train_engine(args, param, gpu_ids, bar)
    except TrainingDiverged as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
            glog.log.files.remove(bar)
            glog.log.stderr = True
        glog.log.close()


def _train_engine(args, param, gpu_ids, bar):
    from ..engine.train import TrainOptions, train
    device = engine_device(param, gpu_ids)
    if int(os.environ.get("RANK", "0")) == 0:
        log_device(device)
    if device.startswith("cuda"):
        import torch
        torch.cuda.set_device(device)
    opts = TrainOptions(args.solver, args.weights, args.snapshot, device=device, fast=args.fast,
                        sigint_effect=args.sigint_effect, sighup_effect=args.sighup_effect,
                        level=args.level, stages=tuple(args.stage.split(",")),  # "" → [""], as Caffe
                        param=param)
    loop = train(opts, observer=bar)
    return 0 if loop is not None else 1

