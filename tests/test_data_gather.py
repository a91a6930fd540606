"""Decoding/rendering into the pixel store: outcomes, and the same pixels with 1 or 2 workers."""
import cv2
import numpy as np

from bnface_caffe.data import gather, synthetic


def test_load_files_outcomes_and_pixels(tmp_path):
    paths = []
    for i, shape in enumerate([(50, 50), (70, 90), (90, 70)]):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full(shape, 40 * i, np.uint8))
        paths.append(str(path))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    paths.append(str(tmp_path / "bad.jpg"))
    for workers in (1, 2):
        store = np.zeros((4, 50, 50), np.uint8)
        outcome = gather.load_files(paths, store, detect=False, size=50, margin=0.2,
                                    workers=workers, progress=False)
        assert outcome[:3] == ["as-is", "centre", "centre"]
        assert gather.is_skipped(outcome[3]) and outcome[3].startswith("not a decodable")
        assert store[:3, 0, 0].tolist() == [0, 40, 80] and store[3].max() == 0


def test_render_synthetic_fills_identity_blocks():
    store = np.zeros((3 * 4, 50, 50), np.uint8)
    gather.render_synthetic(3, 4, store, seed=2, difficulty=1.0, size=50, workers=2,
                            progress=False)
    np.testing.assert_array_equal(store[4:8], synthetic.render_identity(2, 1, 4, difficulty=1.0))
