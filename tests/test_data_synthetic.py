"""Built-in synthetic identities: deterministic, face-like, distinguishable but not trivial."""
import numpy as np

from bnface_caffe.data import synthetic


def test_deterministic_per_seed_and_independent_of_set_size():
    a = synthetic.render_identity(seed=3, k=7, count=4)
    b = synthetic.render_identity(seed=3, k=7, count=6)
    assert a.shape == (4, 50, 50) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b[:4])  # more images never change the first ones
    c = synthetic.render_identity(seed=4, k=7, count=4)
    assert not np.array_equal(a, c)
    assert synthetic.identity_params(3, 7) == synthetic.identity_params(3, 7)
    assert synthetic.virtual_path(42, 7) == "id0042/0007.png"


def test_images_vary_within_an_identity_and_difficulty_scales_it():
    easy = synthetic.render_identity(0, 1, 12, difficulty=0.0).astype(np.float32)
    hard = synthetic.render_identity(0, 1, 12, difficulty=1.5).astype(np.float32)
    assert easy.std(0).mean() > 1.0      # even easy images differ (background, expression)
    assert hard.std(0).mean() > 1.5 * easy.std(0).mean()
    assert 30 < hard.mean() < 220 and hard.min() < 60 and hard.max() > 190


def test_nearest_mean_classifier_is_well_above_chance_and_well_below_perfect():
    identities, train_n, test_n = 40, 16, 6
    images = np.stack([synthetic.render_identity(11, k, train_n + test_n)
                       for k in range(identities)]).astype(np.float32)
    images = images.reshape(identities, train_n + test_n, -1)
    images -= images.mean(-1, keepdims=True)  # remove global brightness
    centres = images[:, :train_n].mean(1)
    test = images[:, train_n:].reshape(identities * test_n, -1)
    truth = np.repeat(np.arange(identities), test_n)
    d = ((test[:, None, :] - centres[None]) ** 2).sum(-1)
    accuracy = (d.argmin(1) == truth).mean()
    chance = 1.0 / identities
    assert 4 * chance < accuracy < 0.8, accuracy


def test_contact_sheet_tiles_images():
    sheet = synthetic.contact_sheet(np.zeros((5, 3, 4), np.uint8), cols=2, pad=1)
    assert sheet.shape == (3 * 4 + 1, 2 * 5 + 1)
    assert sheet[0].min() == 255 and sheet[1, 1] == 0
