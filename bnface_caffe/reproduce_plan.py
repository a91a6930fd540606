"""What `make demo` and `make reproduce` run: data, nets, scaled solvers, the five runs.

A plan is data only; bnface_caffe/cli/reproduce.py carries it out with the project's own
tools (build_lmdb, gen_net, gen_solver, train, plot_curves, plot_lr, report), so every
step can be re-run by hand from the commands it prints.
"""
import math
from dataclasses import dataclass, field

from . import paper

# (run name, schedule name, net): the paper's four curves, then ours.
RUNS = (
    ("original", "original", "baseline"),
    ("long_step", "long_step", "bn"),
    ("short_step", "short_step", "bn"),
    ("multistep", "multistep", "bn"),
    ("early_drop", "early_drop", "bn"),
)
# early_drop and the three smoother schedules it was chosen among (README's candidate table).
CANDIDATE_RUNS = (
    ("poly", "candidate_poly", "bn"),
    ("exp", "candidate_exp", "bn"),
    ("inv", "candidate_inv", "bn"),
    ("early_drop", "early_drop", "bn"),
)
PAPER_ORIGINAL_ITERATIONS = paper.ORIGINAL_MAX_ITER


@dataclass
class Plan:
    name: str
    identities: int = 50
    images_per_identity: int = 160
    difficulty: float = 0.5
    data_seed: int = 0
    # People kept out of training (rendered in addition to `identities`, or taken from a
    # real set); every run's final snapshot is evaluated on them (tools/verify.py). 0: none.
    holdout_identities: int = 20
    # Reduced widths keep the nets' shape; the last block stays wide enough (160) for the
    # baseline's Dropout 0.5 to leave it learning (at 80 features it sat at chance).
    widths: str = "8,16,16,32,32,64,64,160"
    # He init: with xavier the 8-conv baseline without BN barely moves in a CPU budget.
    filler: str = "msra"
    batch_size: int = 64
    test_batch_size: int = 100
    original_epochs: float = 24.0  # epochs of the train set in the 420,000-iteration schedule
    tests_per_original_run: int = 60
    display_per_original_run: int = 200
    random_seed: int = 1
    runs: tuple = RUNS
    extra_net_args: list = field(default_factory=list)

    def scale(self, train_images):
        """gen_solver --scale: the original schedule spans `original_epochs` epochs."""
        iterations = self.original_epochs * train_images / self.batch_size
        return iterations / PAPER_ORIGINAL_ITERATIONS

    def test_iter(self, test_images):
        """Enough test batches to cover the test set once."""
        return max(1, math.ceil(test_images / self.test_batch_size))

    def test_interval_paper(self):
        """test_interval in the paper's iterations (gen_solver scales it)."""
        return PAPER_ORIGINAL_ITERATIONS // self.tests_per_original_run

    def display_paper(self):
        """display in the paper's iterations (gen_solver scales it)."""
        return PAPER_ORIGINAL_ITERATIONS // self.display_per_original_run


PLANS = {
    # `make demo`: the built-in set on a 2-core CPU in about 15 minutes.
    "demo": Plan("demo", holdout_identities=40),
    # `make demo DEMO_FAST=1` (CI): the same pipeline end to end in under 3 minutes.
    "fast": Plan("fast", identities=20, images_per_identity=60, original_epochs=10,
                 tests_per_original_run=12, display_per_original_run=40),
    # The candidate schedules early_drop was chosen among, on the demo's data and nets.
    "candidates": Plan("candidates", runs=CANDIDATE_RUNS),
    # `make reproduce`: the paper's full widths on a bigger built-in set (or DATA=...).
    "reproduce": Plan("reproduce", identities=1000, images_per_identity=50,
                      widths="32,64,64,128,96,192,160,320", original_epochs=30.0,
                      tests_per_original_run=84, display_per_original_run=420,
                      holdout_identities=100),
}
