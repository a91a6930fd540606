"""train: train a Caffe solver prototxt, as `caffe train` does.

    bnface-train SOLVER.prototxt [--backend auto|caffe|engine] [--gpu ID[,ID..]|all]
        [--weights A.caffemodel[,B..]] [--snapshot X.solverstate] [--log FILE] [--fast] [-q]
    torchrun --nproc_per_node=N -m -- bnface_caffe.cli.train SOLVER.prototxt ...   # N processes
    (the "--" keeps torchrun from taking options such as --log as its own)

Exit status: 0 done (or stopped by a signal after its snapshot), 1 the loss diverged,
2 bad input.
"""
import argparse
from contextlib import nullcontext
import os
import subprocess
import sys

from .. import backends
from ..engine import solver_setup
from ..engine.distributed import launched_by_torchrun
from ..engine.signals import EFFECTS
from ..formats import caffemodel, tool_log
from ..formats.glog import Glog
from ..proto import caffe_pb2
from . import options


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("solver", help="solver prototxt (paths inside are relative to where you run)")
    p.add_argument("--backend", default="auto", choices=backends.BACKENDS,
                   help="caffe: real Caffe via pycaffe; engine: ours; auto: caffe if `import "
                        "caffe` works (default)")
    options.add_gpu(p, several=True)
    p.add_argument("--weights", help="caffemodel(s), comma-separated, to fine-tune from")
    p.add_argument("--snapshot", help="a .solverstate to resume from")
    options.add_log(p)
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write the run's scalars (train outputs, lr, test outputs, "
                        "iterations/s) as TensorBoard events into DIR; both backends")
    p.add_argument("--fast", action="store_true",
                   help="engine only: the opt-in fast mode (TF32/bf16/channels-last; not "
                        "bit-faithful to Caffe)")
    p.add_argument("--sigint-effect", "--sigint_effect", default="stop", choices=EFFECTS)
    p.add_argument("--sighup-effect", "--sighup_effect", default="snapshot", choices=EFFECTS)
    options.add_stage(p)
    options.add_quiet(p, "log lines on stderr (the --log file still gets every line)")
    options.add_version(p)
    return p


def engine_device(param, gpu_ids, log):
    """cpu or cuda:N, with caffe train's rule: no --gpu means the CPU unless the solver
    explicitly says solver_mode: GPU (then device_id). Under torchrun, the local rank's GPU."""
    import torch
    wants_gpu = param.HasField("solver_mode") and param.solver_mode == caffe_pb2.SolverParameter.GPU
    if launched_by_torchrun():
        if (gpu_ids is not None or wants_gpu) and torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        return "cpu"
    if gpu_ids:
        return f"cuda:{gpu_ids[0]}"
    if wants_gpu:
        if torch.cuda.is_available():
            return f"cuda:{param.device_id}"
        log.warning("caffe.cpp:190", "the solver asks for solver_mode: GPU but no CUDA device is "
                                     "available; training on the CPU")
    return "cpu"


def relaunch_with_torchrun(argv, gpu_ids):
    """--gpu with several ids, not under torchrun: one process per GPU via torchrun."""
    env = dict(os.environ)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    physical = [visible.split(",")[i] for i in gpu_ids] if visible else [str(i) for i in gpu_ids]
    env["CUDA_VISIBLE_DEVICES"] = ",".join(physical)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={len(gpu_ids)}", "-m", "--", "bnface_caffe.cli.train", *argv]
    return subprocess.call(cmd, env=env)


def log_device(device, log):
    if device == "cpu":
        tool_log.use_cpu(log)
        return
    import torch
    count = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if launched_by_torchrun() else 1
    ids = list(range(count)) if count > 1 else [int(device.split(":")[1])]
    tool_log.using_gpus(log, ids, [torch.cuda.get_device_name(i) for i in ids])


class ProgressBar:
    """Iterations, ETA, last loss and test accuracy on an interactive terminal; log lines
    are printed above it (a Glog sink: lines go through tqdm.write)."""

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


def main(argv, log=None, progress_bar=True):
    """`log`: the run's Glog when the caller made it (bnface-caffe: Caffe's program name and
    glog flags; the caller closes it); `progress_bar`: False keeps the glog lines on an
    interactive stderr, as `caffe train` does."""
    args = parser().parse_args(argv)
    caffemodel.check_resume_or_finetune(args.snapshot, args.weights)
    if args.weights:   # every refusal (empty, not a model, no weights) before anything starts
        for path in caffemodel.weight_paths(args.weights):
            caffemodel.read(path)
    backend = backends.resolve(args.backend)
    gpu_ids = options.parse_gpus(args.gpu)
    if backend == "engine" and gpu_ids and len(gpu_ids) > 1 and not launched_by_torchrun():
        return relaunch_with_torchrun(argv, gpu_ids)
    rank = int(os.environ.get("RANK", "0"))
    # Only the root process logs, as in Caffe; the caffe backend's own glog lines reach the
    # --log file through stderr (backends.stderr_also_to).
    own_log = rank != 0 or log is None
    if rank != 0:
        log = Glog.silent()
    elif log is None:
        log = options.make_log("train", args if backend == "engine" else
                               argparse.Namespace(quiet=args.quiet))
    bar = None
    events = tensorboard_writer(args.tensorboard, rank)
    try:
        with (backends.stderr_also_to(args.log, events) if backend == "caffe" else nullcontext()):
            # The solver, its nets and LMDBs are checked, silently, before anything is
            # logged or started; then read again to log what Caffe logs while reading.
            param = solver_setup.read_solver(args.solver)
            train_param, _ = solver_setup.train_net(param, args.solver)
            solver_setup.check_data_sources([(train_param, f"{args.solver}: train net")]
                                            + solver_setup.test_nets(param, args.solver))
            if backend == "engine":   # (pycaffe logs this itself)
                if events is not None:     # (the caffe backend's lines reach it through stderr)
                    log.sinks.append(events)
                param = solver_setup.read_solver(args.solver, log=log)
            if (progress_bar and rank == 0 and sys.stderr.isatty() and backend == "engine"
                    and not args.quiet):
                bar = ProgressBar(param.max_iter)
                log.stderr = False
                log.sinks.append(bar)
            if backend == "caffe":
                from ..engine.train import TrainOptions
                opts = TrainOptions(args.solver, args.weights, args.snapshot, fast=args.fast,
                                    sigint_effect=args.sigint_effect,
                                    sighup_effect=args.sighup_effect)
                return backends.train_with_pycaffe(opts, param, gpu_ids or (), log=log)
            return _train_engine(args, param, gpu_ids, bar, log)
    finally:
        for sink in (bar, events):
            if sink is not None:
                sink.close()
                if sink in log.sinks:   # a caller's log outlives this run
                    log.sinks.remove(sink)
        if own_log:
            log.close()


def tensorboard_writer(folder, rank):
    """--tensorboard DIR: the root process's event writer (a Glog sink), else None."""
    if not folder or rank != 0:
        return None
    from ..tensorboard_events import EventWriter
    return EventWriter(folder)


def _train_engine(args, param, gpu_ids, bar, log):
    from ..engine.train import TrainOptions, train
    device = engine_device(param, gpu_ids, log)
    if int(os.environ.get("RANK", "0")) == 0:
        log_device(device, log)
    if device.startswith("cuda"):
        import torch
        torch.cuda.set_device(device)
    opts = TrainOptions(args.solver, args.weights, args.snapshot, device=device, fast=args.fast,
                        sigint_effect=args.sigint_effect, sighup_effect=args.sighup_effect,
                        level=args.level, stages=options.stages(args), param=param)
    train(opts, observer=bar, log=log)
    return 0


if __name__ == "__main__":
    from . import run as run_tool
    run_tool(main)
