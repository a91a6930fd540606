"""Caffe logs as TensorBoard scalars, so runs (ours, real Caffe's) compare in TensorBoard's UI.

Every value comes from a log line, read by the same parser as the tables (caffelog.py), so a
scalar is exactly what the log says; its step is the line's iteration, its wall time the
line's glog time stamp. Tags:

  train/<output>          each "Train net output #k: <output> = v" (e.g. train/loss)
  train/smoothed_loss     the displayed "Iteration N (...), loss = v" (averaged over
                          average_loss iterations, weighted by the loss weights)
  learning_rate           "Iteration N, lr = v"
  iterations_per_second   the "(v iter/s, ...)" of each display (Caffe's first is meaningless)
  test/<output>           "Test net output #k: <output> = v" of test net #0;
                          test<i>/<output> for test net #i

`EventWriter.add_new(source)` writes the points of a LogParser or CaffeLog not yet written,
so one writer serves a finished log (parse_log.py --tensorboard) and a growing one (a Glog
sink while training: `EventWriter.write(line)`; the pycaffe backend feeds it Caffe's stderr).
"""
import os

from .caffelog import LogParser, split_lines
from .errors import UserError

SMOOTHED_LOSS = "train/smoothed_loss"
LEARNING_RATE = "learning_rate"
RATE = "iterations_per_second"


def test_tag(net, name):
    return f"test/{name}" if net == 0 else f"test{net}/{name}"


class EventWriter:
    """A TensorBoard event file in `logdir` (torch.utils.tensorboard's SummaryWriter)."""

    def __init__(self, logdir):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:   # torch's writer needs the tensorboard package
            raise UserError(f"--tensorboard needs the tensorboard package ({err}); "
                            "pip install tensorboard") from None
        if os.path.exists(logdir) and not os.path.isdir(logdir):
            raise UserError(f"--tensorboard {logdir}: is a file; give a folder (one per run)")
        self.make_writer = SummaryWriter
        self.writer = None       # the event file is made with the first scalar
        self.logdir = str(logdir)
        self.sent = {}           # point list name -> how many were written
        self.parser = None       # for write(): the lines of a growing log
        self.pending = ""

    # -- from parsed points ------------------------------------------------------------
    def add_new(self, source):
        """Write `source`'s points (a LogParser or CaffeLog) that were not written yet."""
        start = source.start_time.timestamp() if source.start_time is not None else None

        def when(seconds):
            return None if start is None or seconds is None else start + seconds

        for it, seconds, name, value in self._new(source, "train_points"):
            self._scalar(f"train/{name}", value, it, when(seconds))
        for it, seconds, value in self._new(source, "loss_points"):
            self._scalar(SMOOTHED_LOSS, value, it, when(seconds))
        for it, seconds, value in self._new(source, "rate_points"):
            self._scalar(RATE, value, it, when(seconds))
        rates = self._new(source, "lr_points")
        times = source.lr_seconds[len(source.lr_points) - len(rates):]
        for (it, value), seconds in zip(rates, times):
            self._scalar(LEARNING_RATE, value, it, when(seconds))
        for net, it, seconds, name, value in self._new(source, "test_points"):
            self._scalar(test_tag(net, name), value, it, when(seconds))

    def _new(self, source, field):
        points = getattr(source, field)
        done = self.sent.get(field, 0)
        if len(points) < done:   # the log started over (training restarted into the file)
            done = 0
        self.sent[field] = len(points)
        return points[done:]

    def _scalar(self, tag, value, step, walltime):
        if self.writer is None:
            try:
                self.writer = self.make_writer(log_dir=self.logdir)
            except OSError as err:
                raise UserError(f"--tensorboard {self.logdir}: cannot write there "
                                f"({err.strerror or err})") from None
        self.writer.add_scalar(tag, value, global_step=step, walltime=walltime)

    # -- as a Glog sink / stderr consumer: lines as they are written ----------------------
    def write(self, text):
        if self.parser is None:
            self.parser = LogParser()
        lines = split_lines(self.pending + text)
        self.pending = lines.pop()
        for line in lines:
            self.parser.feed(line)
        self.add_new(self.parser)

    def flush(self):
        if self.writer is not None:
            self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()


def write_log(log, logdir):
    """A parsed log (caffelog.CaffeLog) as one new event file in `logdir`; returns the number
    of scalars written."""
    writer = EventWriter(logdir)
    try:
        writer.add_new(log)
    finally:
        writer.close()
    return sum(writer.sent.values())
