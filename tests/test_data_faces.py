"""Face crop: Haar detection on real photos shipped with scikit-image, crops, bad files."""
import cv2
import numpy as np
import pytest

from bnface_caffe.data import faces

skdata = pytest.importorskip("skimage.data", reason="scikit-image provides the test photos")


@pytest.fixture(scope="module")
def cascade():
    return faces.load_cascade()


def astronaut_gray():
    try:
        rgb = skdata.astronaut()  # bundled in the wheel (no download)
    except Exception as err:  # pragma: no cover - depends on the installed wheel
        pytest.skip(f"skimage.data.astronaut() unavailable offline: {err}")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def test_finds_the_astronauts_face(cascade):
    gray = astronaut_gray()
    x, y, w, h = faces.detect_largest_face(gray, cascade)
    # Eileen Collins' face sits around x 170..280, y 40..170 of the 512×512 photo.
    cx, cy = x + w / 2, y + h / 2
    assert 190 < cx < 260 and 80 < cy < 150 and 70 < w < 160
    crop, how = faces.face_crop(gray, 50, cascade, margin=0.2)
    assert how == "face" and crop.shape == (50, 50) and crop.dtype == np.uint8
    # The crop is that square (+20% each side) resized with INTER_AREA.
    x0, y0, side = faces.square_around((x, y, w, h), 0.2)
    expected = cv2.resize(gray[y0:y0 + side, x0:x0 + side], (50, 50), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crop, expected)


def test_lfw_faces_are_found_and_non_faces_are_not(cascade):
    try:
        lfw = skdata.lfw_subset()  # 200 25×25 images: 100 faces, then 100 non-faces
    except Exception as err:  # pragma: no cover
        pytest.skip(f"skimage.data.lfw_subset() unavailable offline: {err}")
    images = (lfw * 255).round().astype(np.uint8)
    found = [faces.detect_largest_face(im, cascade) is not None for im in images]
    assert sum(found[:100]) >= 70, sum(found[:100])
    assert sum(found[100:]) <= 5, sum(found[100:])


def test_no_face_falls_back_to_a_centre_crop(cascade):
    flat = np.tile(np.arange(120, dtype=np.uint8), (80, 1))  # 80×120, no face anywhere
    crop, how = faces.face_crop(flat, 50, cascade)
    assert how == "centre"
    expected = cv2.resize(flat[:, 20:100], (50, 50), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crop, expected)
    crop, how = faces.face_crop(flat, 50, None)  # detection off: the same centre crop
    assert how == "centre"
    np.testing.assert_array_equal(crop, expected)


def test_images_already_at_size_are_taken_as_they_are(cascade):
    image = np.random.default_rng(0).integers(0, 256, (50, 50), dtype=np.uint8)
    crop, how = faces.face_crop(image, 50, cascade)
    assert how == "as-is" and np.array_equal(crop, image)


def test_squares_leaving_the_image_repeat_its_border():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4)
    out = faces.crop_square(image, -1, -1, 3)
    np.testing.assert_array_equal(out, [[0, 0, 1], [0, 0, 1], [4, 4, 5]])
    # 30×40 box centred at (25, 40); side 40·(1 + 2·0.25) = 60.
    assert faces.square_around((10, 20, 30, 40), 0.25) == (-5, 10, 60)


def test_read_gray_reasons(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"GIF89a nonsense")
    good = tmp_path / "ok.png"
    cv2.imwrite(str(good), np.full((60, 70, 3), (10, 20, 30), np.uint8))
    assert faces.read_gray(str(empty)) == (None, "empty file")
    assert faces.read_gray(str(junk))[1].startswith("not a decodable image")
    assert faces.read_gray(str(tmp_path / "missing.jpg"))[1].startswith("cannot read")
    image, why = faces.read_gray(str(good))
    assert why is None and image.shape == (60, 70)
    # OpenCV's BGR→gray weights: 0.114 B + 0.587 G + 0.299 R.
    assert abs(int(image[0, 0]) - round(0.114 * 10 + 0.587 * 20 + 0.299 * 30)) <= 1


def test_a_face_filling_the_image_gets_a_smaller_margin_not_a_padded_border():
    # 100×100 image, 80×80 face in the middle: +20% each side (112) would leave the image;
    # the widest square on the face's centre that fits is the whole image
    assert faces.fit_square((10, 10, 80, 80), 0.2, (100, 100)) == (0, 0, 100, "face-fitted")
    # a face at the left edge: the centred square that fits is the face box itself
    assert faces.fit_square((0, 20, 60, 60), 0.2, (100, 100)) == (0, 20, 60, "face-fitted")
    # room to spare: the full margin
    assert faces.fit_square((30, 30, 20, 20), 0.2, (100, 100)) == (26, 26, 28, "face")
    # the face itself crosses the edge: the full square, padded (centre (20, 30), side 84)
    assert faces.fit_square((0, 0, 40, 60), 0.2, (100, 100)) == (-22, -12, 84, "face-padded")


def test_padding_mirrors_the_image_instead_of_smearing_its_border():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4)
    out = faces.crop_square(image, -1, -1, 3, border=cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(out, [[5, 4, 5], [1, 0, 1], [5, 4, 5]])


def test_lfw_style_tight_crops_stay_inside_the_image(cascade):
    try:
        lfw = skdata.lfw_subset()
    except Exception as err:  # pragma: no cover
        pytest.skip(f"skimage.data.lfw_subset() unavailable offline: {err}")
    outcomes = []
    for face in (lfw[:100] * 255).round().astype(np.uint8):
        big = cv2.resize(face, (100, 100), interpolation=cv2.INTER_LINEAR)   # LFW-like: tight
        box = faces.detect_largest_face(big, cascade)
        crop, how = faces.face_crop(big, 50, cascade, margin=0.2)
        outcomes.append(how)
        if how != "face-fitted":
            continue
        x0, y0, side, _ = faces.fit_square(box, 0.2, big.shape)
        assert x0 >= 0 and y0 >= 0 and x0 + side <= 100 and y0 + side <= 100
        assert side >= max(box[2], box[3])                     # the whole face is kept
        expected = cv2.resize(big[y0:y0 + side, x0:x0 + side], (50, 50),
                              interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(crop, expected)
    # these faces fill their images: most need the smaller margin, none is left to streaks
    assert outcomes.count("face-fitted") >= 50, {h: outcomes.count(h) for h in set(outcomes)}
