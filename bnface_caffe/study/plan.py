"""The study's cells as data: which net, which schedule, which data, how long.

Two questions, each cell run with several seeds (a seed sets the solver's random_seed, i.e.
the initial weights and dropout masks, and the order of the training records; the faces
and the train/test split stay those of the data seed, so every seed tests on the same
images):

- scale: the baseline (`original`) and the BN net (`multistep`, `early_drop`) at growing
  numbers of identities with the same images per identity and the same number of epochs
  (reproduce_plan.Plan.scale: the original 420,000-iteration schedule spans `epochs`
  epochs; the BN schedules are their paper length relative to it).
- ablation, at the smallest scale size (the demo's): the paper changed three things between
  its two nets besides adding BatchNorm — one convolution fewer in block 2, no Dropout, a
  5.5× higher rate — each is undone on its own, and the baseline gets the BN net's rate and
  schedule. The scale cells of that size are the references.

`FULL` is sized for a quiet 2-core CPU in about two hours (`estimate`); `QUICK` is the same
pipeline at toy size, for the tests.
"""
import dataclasses
import fnmatch
from dataclasses import dataclass

from .. import paper
from ..data.split import test_count
from ..errors import UserError
from ..paper_schedules import paper_schedule, scale_iteration
from ..reproduce_plan import PLANS, Plan

TEST_FRACTION = 0.1  # build_lmdb's default, used by every cell


@dataclass(frozen=True)
class Cell:
    name: str            # what --cells selects: scale-1000-multistep, ablation-bn-dropout
    question: str        # "scale" or "ablation"
    about: str           # one line for the table
    net: str             # "baseline" or "bn"
    schedule: str        # a paper_schedules name
    plan: Plan           # data size, widths, epochs, test and display density
    net_args: tuple = ()  # extra gen_net flags (the ablations)

    @property
    def classes(self):
        return self.plan.identities

    def config(self):
        """What makes a result belong to this cell (a result.json made otherwise is stale)."""
        fields = dataclasses.asdict(self.plan)
        for unused in ("runs", "random_seed", "extra_net_args"):   # the seed and net_args rule
            fields.pop(unused)
        return {"net": self.net, "schedule": self.schedule, "net_args": list(self.net_args),
                "plan": fields}


@dataclass(frozen=True)
class Study:
    name: str            # results/<name>/ by default
    cells: tuple         # what a run of the whole study runs
    references: tuple    # the ablations' (baseline, BN net) cells: the paper's two nets
    extra_cells: tuple = ()   # in the plan, run only when --cells names them
    seeds: tuple = (0, 1, 2)
    target: float = paper.TARGET_ACCURACY
    tolerance_pp: float = 0.1

    @property
    def all_cells(self):
        return self.cells + self.extra_cells


# The three runs of the scale question: (run, schedule, net).
SCALE_RUNS = (("original", "original", "baseline"),
              ("multistep", "multistep", "bn"),
              ("early_drop", "early_drop", "bn"))
BASELINE_RUN, BN_RUNS = "original", ("multistep", "early_drop")

# The ablations: (name, schedule, net, gen_net flags, what it asks). Their references are
# the scale cells at the ablations' size (original: the baseline; multistep: the BN net).
ABLATIONS = (
    ("bn-block2-2convs", "multistep", "bn", ("--block2-convs", "2"),
     "BN net with block 2's second convolution restored"),
    ("bn-dropout", "multistep", "bn", ("--dropout", "0.5"),
     "BN net with the baseline's Dropout 0.5 before the classifier"),
    ("baseline-lr0.055", "multistep", "baseline", (),
     "baseline net at the BN rate: the BN net's schedule (multistep, 0.055)"),
    ("bn-lr0.01", "long_step", "bn", (),
     "BN net at the baseline's rate: the original schedule (long_step, 0.01)"),
)
REFERENCE_ABOUT = {"original": "the paper's baseline net and schedule (0.01): reference",
                   "multistep": "the paper's BN net and schedule (0.055): reference"}


def scale_cells(base, identities):
    return [Cell(f"scale-{identities}-{run}", "scale",
                 REFERENCE_ABOUT.get(run, f"BN net, ours: {schedule}"), net, schedule,
                 dataclasses.replace(base, identities=identities))
            for run, schedule, net in SCALE_RUNS]


def make_study(name, base, scale_identities, extra_identities=(), seeds=(0, 1, 2)):
    """Scale cells at each size, then the ablations at the first size (whose scale cells are
    their references); `extra_identities` are sizes run only on request."""
    cells = [c for n in scale_identities for c in scale_cells(base, n)]
    ablation_base = dataclasses.replace(base, identities=scale_identities[0])
    cells += [Cell(f"ablation-{short}", "ablation", about, net, schedule, ablation_base, args)
              for short, schedule, net, args, about in ABLATIONS]
    references = tuple(f"scale-{scale_identities[0]}-{run}" for run in ("original", "multistep"))
    extra = tuple(c for n in extra_identities for c in scale_cells(base, n))
    return Study(name, tuple(cells), references, extra, seeds)


# The full study: the demo's data per identity, nets and length (160 images per identity,
# 144 of them for training; the original schedule spans 24 epochs), at 50 and 100
# identities, 3 seeds (about 80 minutes on a quiet 2-core CPU; 200 identities would add
# about 70 more, so they are a size run on request, like 1,000); the ablations at 50 (the demo itself), sharing its two reference cells.
# Why not fewer images or epochs at more identities: the baseline (no BN) stays at chance
# until each identity has been seen a few hundred times (demo: it left chance after ~250
# iterations = 320 presentations per identity) and reached 80% after 900 iterations = 1,152
# presentations. Pilot runs (seed 0, 36 training images per identity, 16 epochs, baseline):
# at 200 identities it was at 1.8% when its rate dropped (iteration 643) and ended at 5.1% best;
# at 1,000 it was at 0.25% at the drop (iteration 3,214), 0.2% at its last test (3,600). So
# presentations per identity (epochs × training images) must stay at the demo's at every
# size, and a size costs in proportion to its identities: 1,000 identities are 54,000 baseline
# iterations, about 2 hours per seed for their three runs on a quiet 2-core CPU. They and the
# 200-identity size are in the plan (`--cells 'scale-200-*'`), not in the default run.
DEMO = dataclasses.replace(PLANS["demo"], name="study")   # with its 40 held-out people
FULL = make_study("study", DEMO, scale_identities=(50, 100), extra_identities=(200, 1000))

# The tests' size: the same cells on toy data and 4-wide nets, a few iterations each.
TOY = dataclasses.replace(DEMO, name="study-quick", images_per_identity=10, original_epochs=2.0,
                          widths="4,4,4,4,4,4,4,8", batch_size=16, test_batch_size=10,
                          tests_per_original_run=4, display_per_original_run=4,
                          holdout_identities=20)   # verify's 10 folds need 20 people
QUICK = make_study("study-quick", TOY, scale_identities=(6, 12), extra_identities=(18,))
STUDIES = {"full": FULL, "quick": QUICK}


def select(study, patterns):
    """The cells named by comma-separated names or shell patterns (scale-1000-*), in plan
    order; without patterns, the study's default cells (not its extra ones)."""
    if not patterns:
        return study.cells
    wanted = [p for p in patterns.split(",") if p]
    unknown = [p for p in wanted
               if not any(fnmatch.fnmatchcase(c.name, p) for c in study.all_cells)]
    if unknown or not wanted:
        raise UserError(f"--cells: {', '.join(unknown) or repr(patterns)} matches no cell; the "
                        f"cells are {', '.join(c.name for c in study.all_cells)}")
    return tuple(c for c in study.all_cells if any(fnmatch.fnmatchcase(c.name, p) for p in wanted))


def parse_seeds(text):
    """'0,1,2' -> (0, 1, 2): distinct non-negative integers."""
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: seeds must be distinct and not negative")
    return seeds


# -- sizes and cost, known before any data is built ----------------------------------------
def image_counts(plan):
    """(train images, test images) build_lmdb makes for a synthetic plan."""
    per_test = test_count(plan.images_per_identity, TEST_FRACTION)
    return (plan.identities * (plan.images_per_identity - per_test),
            plan.identities * per_test)


def solver_shape(cell, train_images=None):
    """(scale, max_iter, stepvalues or stepsize, test_interval) of the cell's scaled solver,
    as gen_solver --scale makes them."""
    train_images = train_images or image_counts(cell.plan)[0]
    scale = cell.plan.scale(train_images)
    schedule = paper_schedule(cell.schedule)
    return dict(scale=scale, max_iter=scale_iteration(schedule.max_iter, scale),
                stepvalues=[scale_iteration(v, scale) for v in schedule.stepvalues],
                stepsize=scale_iteration(schedule.stepsize, scale) if schedule.stepsize else 0,
                test_interval=scale_iteration(cell.plan.test_interval_paper(), scale))


# Seconds per training iteration (batch 64, the demo's widths) with the tests a run makes
# (a tenth of the images, 60 tests per original run), on a quiet 2-core CPU: the reference
# demo run (results/reference/demo/run.json: 173.0 s for 2,700 baseline iterations, 101.6 s
# for 1,479 BN ones). Only for the estimate printed before a study starts.
SECONDS_PER_ITERATION = 0.061   # the demo's BN net, measured 2026-12-01 (engine after issue 15)
SECONDS_PER_IMAGE_BUILT = 0.0012   # build_lmdb --synthetic, 2 workers
SECONDS_PER_VERIFIED_IMAGE = 0.002  # tools/verify.py on the held-out people, with its set-up


def estimate(cells, seeds):
    """(training iterations, estimated minutes) for these cells × seeds on a quiet 2-core CPU."""
    iterations = sum(solver_shape(c)["max_iter"] for c in cells) * len(seeds)
    datasets = {(c.plan.identities + c.plan.holdout_identities, c.plan.images_per_identity)
                for c in cells}
    images = sum(n * per for n, per in datasets) * len(seeds)
    verified = sum(c.plan.holdout_identities * c.plan.images_per_identity for c in cells) * len(seeds)
    seconds = (iterations * SECONDS_PER_ITERATION + images * SECONDS_PER_IMAGE_BUILT
               + verified * SECONDS_PER_VERIFIED_IMAGE)
    return iterations, seconds / 60
