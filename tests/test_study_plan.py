"""The study's plan: its cells, their sizes, and scaled schedules of the paper's shape."""
import pytest

from bnface_caffe.architectures import NetOptions, build_net
from bnface_caffe.cli import gen_net, gen_solver
from bnface_caffe.cli.reproduce_study import solver_args
from bnface_caffe.errors import UserError
from bnface_caffe.formats import prototxt
from bnface_caffe.proto import caffe_pb2
from bnface_caffe.reproduce_plan import PLANS
from bnface_caffe.study import plan
from bnface_caffe.study.plan import FULL, QUICK

# The paper's schedules, written out here (the oracle): fractions of max_iter at which the
# rate changes, max_iter, base_lr and the factor per change.
PAPER = {
    "original": (420000, (150000, 300000), 0.01, 0.1),
    "long_step": (420000, (150000, 300000), 0.01, 0.1),
    "multistep": (230000, (14000, 28000, 42000, 120000, 120000, 120000, 120000, 160000, 160000,
                           160000, 160000, 175000, 190000, 210000), 0.055, 0.7),
    "early_drop": (230000, (40000, 100000), 0.055, 0.1),
}


def scaled_solver(cell, tmp_path):
    """The solver the study generates for the cell (its gen_solver arguments, run)."""
    train, test = plan.image_counts(cell.plan)
    path = tmp_path / "solver.prototxt"
    args = solver_args(cell, 0, "net.prototxt", train, test, "snapshots/x") + ["-o", str(path)]
    assert gen_solver.main([str(a) for a in args]) == 0
    return prototxt.read_text(str(path), caffe_pb2.SolverParameter)


@pytest.mark.parametrize("cell", FULL.all_cells, ids=lambda c: c.name)
def test_every_full_cell_keeps_the_papers_schedule_shape(cell, tmp_path):
    solver = scaled_solver(cell, tmp_path)
    paper_max, steps, base_lr, gamma = PAPER[cell.schedule]
    assert solver.lr_policy == "multistep" and solver.base_lr == pytest.approx(base_lr)
    assert solver.gamma == pytest.approx(gamma)
    assert solver.max_iter >= 200   # enough iterations for the shape to mean something
    assert len(solver.stepvalue) == len(steps)   # repeated steps stay repeated
    # each change at the paper's fraction of the run, up to the rounding of one iteration
    for scaled, step in zip(solver.stepvalue, steps):
        assert abs(scaled / solver.max_iter - step / paper_max) <= 1 / solver.max_iter, (scaled, step)
    # the original schedule spans the cell's epochs; the BN ones their paper length beside it
    train_images = plan.image_counts(cell.plan)[0]
    iterations = cell.plan.original_epochs * train_images / cell.plan.batch_size * paper_max / 420000
    assert abs(solver.max_iter - iterations) <= 0.51, (solver.max_iter, iterations)
    # tested as often, relative to its length, in every cell; snapshots only at the end
    assert solver.snapshot > solver.max_iter and solver.random_seed == 0
    # (the paper-unit interval 420,000 / tests scaled and rounded: within half an iteration)
    interval = (cell.plan.original_epochs * train_images / cell.plan.batch_size
                / cell.plan.tests_per_original_run)
    assert abs(solver.test_interval - interval) <= 0.5 + 1e-6, (solver.test_interval, interval)


def test_scaled_schedules_worked_by_hand(tmp_path):
    cells = {c.name: c for c in FULL.all_cells}
    # 200 identities x 160 images: 144 train each, 28,800 images; 24 epochs at batch 64 =
    # 10,800 iterations; the drops at 150k/420k and 300k/420k of them: 3,857.1 and 7,714.3
    original = scaled_solver(cells["scale-200-original"], tmp_path)
    assert original.max_iter == 10800 and list(original.stepvalue) == [3857, 7714]
    # multistep: 230/420 of 10,800 = 5,914.3; drops at 14k, 28k, 42k, 120k of 420k: 360,
    # 720, 1,080, 3,085.7
    multistep = scaled_solver(cells["scale-200-multistep"], tmp_path)
    assert multistep.max_iter == 5914 and list(multistep.stepvalue)[:4] == [360, 720, 1080, 3086]
    # the demo's size (7,200 train images): 2,700 iterations, as `make demo`
    baseline = scaled_solver(cells["scale-50-original"], tmp_path)
    assert baseline.max_iter == 2700 and list(baseline.stepvalue) == [964, 1929]
    # 1,000 identities (on request): 144,000 images, 54,000 iterations
    big = scaled_solver(cells["scale-1000-original"], tmp_path)
    assert big.max_iter == 54000 and list(big.stepvalue) == [19286, 38571]


def test_the_full_study_asks_the_issues_questions():
    cells = {c.name: c for c in FULL.all_cells}
    assert FULL.seeds == (0, 1, 2) and FULL.target == 0.80
    scale = [c for c in FULL.cells if c.question == "scale"]
    assert sorted({c.classes for c in scale}) == [50, 100]
    assert sorted({c.classes for c in FULL.extra_cells}) == [200, 1000]
    assert {(c.net, c.schedule) for c in scale} == {("baseline", "original"), ("bn", "multistep"),
                                                    ("bn", "early_drop")}
    # fixed images per identity and epochs across sizes; only the number of classes changes
    assert len({(c.plan.images_per_identity, c.plan.original_epochs, c.plan.widths)
                for c in FULL.all_cells}) == 1
    # ablations at the demo's data, nets and length; its two runs are the references
    demo = PLANS["demo"]
    assert FULL.references == ("scale-50-original", "scale-50-multistep")
    for c in [cells[name] for name in FULL.references] + [c for c in FULL.cells if c.question == "ablation"]:
        assert (c.plan.identities, c.plan.images_per_identity, c.plan.original_epochs,
                c.plan.widths, c.plan.filler) == (demo.identities, demo.images_per_identity,
                                                  demo.original_epochs, demo.widths, demo.filler)
    assert [(cells[n].net, cells[n].schedule) for n in FULL.references] == [
        ("baseline", "original"), ("bn", "multistep")]
    # each ablation changes one thing against its reference
    assert (cells["ablation-bn-block2-2convs"].net_args, cells["ablation-bn-dropout"].net_args) == \
        (("--block2-convs", "2"), ("--dropout", "0.5"))
    assert (cells["ablation-baseline-lr0.055"].net, cells["ablation-baseline-lr0.055"].schedule) == \
        ("baseline", "multistep")
    assert (cells["ablation-bn-lr0.01"].net, cells["ablation-bn-lr0.01"].schedule) == ("bn", "long_step")


@pytest.mark.parametrize("name, convs, dropout", [
    ("scale-50-multistep", 7, None), ("ablation-bn-block2-2convs", 8, None), ("ablation-bn-dropout", 7, 0.5)])
def test_ablation_flags_make_the_intended_net(tmp_path, name, convs, dropout):
    cell = next(c for c in FULL.all_cells if c.name == name)
    out = tmp_path / "net.prototxt"
    assert gen_net.main(["--bn", "--num-classes", "50", *cell.net_args, "-o", str(out)]) == 0
    net = prototxt.read_text(str(out), caffe_pb2.NetParameter)
    assert [l.type for l in net.layer].count("Convolution") == convs
    drops = [l.dropout_param.dropout_ratio for l in net.layer if l.type == "Dropout"]
    assert drops == ([] if dropout is None else [pytest.approx(dropout)])
    assert [l.type for l in net.layer].count("BatchNorm") == 4


def test_full_study_fits_the_budget_and_quick_is_a_toy():
    iterations, minutes = plan.estimate(FULL.cells, FULL.seeds)
    # per seed: 50 identities 2,700 + 2 × 1,479; 100: 14,400 images / 64 × 24 epochs = 5,400
    # + 2 × 2,957 (230/420 of it); the ablations 3 × 1,479 + 2,700
    assert iterations == 3 * (2700 + 2 * 1479 + 5400 + 2 * 2957 + 3 * 1479 + 2700) == 72327
    assert minutes <= 90
    assert plan.estimate(QUICK.cells, QUICK.seeds)[0] < 300
    def kinds(study):   # the same kinds of cell, at other sizes
        return {(c.question, c.net, c.schedule, c.net_args) for c in study.cells}
    assert kinds(QUICK) == kinds(FULL)
    # the quick nets fit their classes (top-5 accuracy needs at least 5)
    assert min(c.classes for c in QUICK.cells) >= 5
    build_net(NetOptions(bn=True, num_classes=6, widths=tuple(map(int, QUICK.cells[0].plan.widths.split(",")))))


def test_cell_selection_and_seeds():
    assert [c.name for c in plan.select(FULL, "scale-1000-*")] == [   # the extra size, asked for
        "scale-1000-original", "scale-1000-multistep", "scale-1000-early_drop"]
    assert [c.name for c in plan.select(FULL, "ablation-bn-dropout,scale-50-original")] == [
        "scale-50-original", "ablation-bn-dropout"]     # plan order
    assert plan.select(FULL, None) == FULL.cells
    assert not {c.name for c in FULL.cells} & {c.name for c in FULL.extra_cells}
    with pytest.raises(UserError, match="scale-7-\\* matches no cell"):
        plan.select(FULL, "scale-7-*")
    assert plan.parse_seeds("0,1,2") == (0, 1, 2) and plan.parse_seeds("5") == (5,)
    for bad, message in (("0,x", "comma-separated integers"), ("1,1", "distinct"), ("-1", "negative")):
        with pytest.raises(UserError, match=message):
            plan.parse_seeds(bad)


def test_config_names_what_makes_a_result_belong_to_a_cell():
    a, b = FULL.cells[0], FULL.cells[1]
    assert a.config() != b.config()
    assert a.config()["plan"]["identities"] == 50 and "random_seed" not in a.config()["plan"]
