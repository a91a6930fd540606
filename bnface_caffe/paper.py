"""The paper's numbers, in one place (../shared/paper/FACTS.md has them as prose).

"Speeding up neural network training" (2019): a Caffe face-recognition CNN, with and
without Batch Normalization. Everything else in the package reads these names; a number
the paper gives appears nowhere else.
"""
NUM_CLASSES = 14700            # the text also says 14,000 once
TRAIN_IMAGES = 3_000_000       # "about 3 million face images"
INPUT_SIZE = 50                # one grayscale face, 50x50
FEATURE_WIDTH = 320            # the 1x1x320 feature after the 7x7 average pool
FINAL_POOL = 7
TARGET_ACCURACY = 0.80         # the table's "iterations to 80%"
BASELINE_HOURS = 95            # the full baseline run on a Titan X

# Learning-rate schedules (the paper's "Figure 2" table and its text)
ORIGINAL_BASE_LR = 0.01
ORIGINAL_MAX_ITER = 420_000
ORIGINAL_TABLE_STEPSIZE = 50_000             # table: 0.01 * 0.1^floor((iter - 1) / 50000)
ORIGINAL_TEXT_STEPVALUES = (150_000, 300_000)  # text: changed only twice
BN_BASE_LR = 0.055
BN_GAMMA = 0.7
SHORT_STEP_STEPSIZE = 11_000
SHORT_STEP_MAX_ITER = 180_000
MULTISTEP_MAX_ITER = 230_000
MULTISTEP_STEPVALUES = ((14_000, 28_000, 42_000) + (120_000,) * 4 + (160_000,) * 4
                        + (175_000, 190_000, 210_000))

# The table's results: (run, formula, iterations to 80%, to convergence, max accuracy)
RESULTS = (
    ("original", "0.01 · 0.1^floor((iter − 1) / 50000)", 64_000, 420_000, 0.945),
    ("short_step", "0.055 · 0.7^floor(iter / 11000)", 45_000, 180_000, 0.867),
    ("multistep", "0.055 · 0.7^Nsteps (14 steps)", 45_000, 230_000, 0.913),
)
