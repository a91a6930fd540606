"""The builder end to end (library level): image files → LMDB → reader, keys, split, mean."""
import os

import cv2
import lmdb
import numpy as np
import pytest

from bnface_caffe.data import build, pack
from bnface_caffe.engine.data_reader import DatumReader
from bnface_caffe.errors import UserError
from bnface_caffe.proto import caffe_pb2


def people(root, counts=(6, 5, 7), size=(64, 80)):
    """root/<person>/<n>.{png,jpg}: random colour images of various shapes."""
    rng = np.random.default_rng(0)
    for p, count in enumerate(counts):
        folder = root / f"person {p}"
        folder.mkdir(parents=True)
        for n in range(count):
            h, w = size[0] + n, size[1] - n
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{n}.{'png' if n % 2 else 'jpg'}"), image)
    return root


def records(path):
    """(key, Datum) pairs read with plain lmdb + the schema (independent of our reader)."""
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        out = [(k.decode(), caffe_pb2.Datum.FromString(v)) for k, v in txn.cursor()]
    env.close()
    return out


def expected_crop(path):
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    h, w = gray.shape
    side = min(h, w)
    square = gray[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return cv2.resize(square, (50, 50), interpolation=cv2.INTER_AREA)


def run(source, outdir, **kw):
    kw.setdefault("workers", 1)
    return build.build(build.Options(outdir=str(outdir), source=str(source), **kw))


def test_round_trip_keys_labels_and_lists(tmp_path):
    src = people(tmp_path / "in")
    out = tmp_path / "out"
    facts = run(src, out, detect=False)
    assert sorted(os.listdir(out)) == ["labels.txt", "mean.binaryproto", "skipped.txt",
                                       "test.txt", "test_lmdb", "train.txt", "train_lmdb"]
    assert (out / "labels.txt").read_text() == "person 0\nperson 1\nperson 2\n"
    assert facts["train"] + facts["test"] == 18 and facts["test"] == 3  # round(0.6|0.5|0.7)
    for name in ("train", "test"):
        listed = [line.rsplit(" ", 1) for line in (out / f"{name}.txt").read_text().splitlines()]
        recs = records(out / f"{name}_lmdb")
        assert len(recs) == len(listed)
        with DatumReader(str(out / f"{name}_lmdb")) as reader:
            images, labels = reader.next_batch(len(recs))
        for i, ((key, d), (path, label)) in enumerate(zip(recs, listed)):
            assert key == pack.record_key(i, path) == f"{i:08d}_{path}"
            assert (d.channels, d.height, d.width, d.encoded) == (1, 50, 50, False)
            assert d.label == int(label) == labels[i] == int(path.split("/")[0][-1])
            crop = expected_crop(src / path)
            np.testing.assert_array_equal(np.frombuffer(d.data, np.uint8).reshape(50, 50), crop)
            np.testing.assert_array_equal(images[i, 0], crop)
    # Every test class is a training class.
    test_labels = {d.label for _, d in records(out / "test_lmdb")}
    assert test_labels <= {d.label for _, d in records(out / "train_lmdb")}


def test_mean_file_equals_numpy_mean_of_the_train_records(tmp_path):
    out = tmp_path / "out"
    facts = run(people(tmp_path / "in"), out, detect=False)
    train = np.stack([np.frombuffer(d.data, np.uint8) for _, d in records(out / "train_lmdb")])
    blob = caffe_pb2.BlobProto.FromString((out / "mean.binaryproto").read_bytes())
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 1, 50, 50)
    expected = train.astype(np.float64).mean(0).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(blob.data, np.float32), expected)
    assert abs(facts["mean"][0] - train.mean()) < 1e-3


def test_split_and_order_are_reproducible_with_the_seed(tmp_path):
    src = people(tmp_path / "in", counts=(12, 12, 12, 12))
    lists = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        run(src, tmp_path / name, detect=False, seed=seed)
        lists[name] = ((tmp_path / name / "train.txt").read_text(),
                       (tmp_path / name / "test.txt").read_text())
    assert lists["a"] == lists["b"] and lists["a"] != lists["c"]
    assert [k for k, _ in records(tmp_path / "a" / "train_lmdb")] == \
           [k for k, _ in records(tmp_path / "b" / "train_lmdb")]


def test_shuffle_seed_changes_the_train_order_only(tmp_path):
    src = people(tmp_path / "in", counts=(12, 12, 12, 12))
    for name, shuffle in (("a", 1), ("b", 2)):
        run(src, tmp_path / name, detect=False, seed=1, shuffle_seed=shuffle)
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "test.txt").read_text() == (b / "test.txt").read_text()
    assert [(k, d.SerializeToString()) for k, d in records(a / "test_lmdb")] == \
           [(k, d.SerializeToString()) for k, d in records(b / "test_lmdb")]
    # the same training records (path, label, pixels), in another order
    def content(folder):
        return [(k.split("_", 1)[1], d.SerializeToString()) for k, d in records(folder / "train_lmdb")]
    assert sorted(content(a)) == sorted(content(b)) and content(a) != content(b)
    assert (a / "mean.binaryproto").read_bytes() == (b / "mean.binaryproto").read_bytes()


def test_corrupt_files_are_skipped_counted_and_listed(tmp_path):
    src = people(tmp_path / "in")
    (src / "person 0" / "empty.jpg").write_bytes(b"")
    (src / "person 1" / "junk.png").write_bytes(b"\x89PNG but not really")
    good = (src / "person 2" / "0.jpg").read_bytes()
    (src / "person 2" / "cut.jpg").write_bytes(good[:len(good) // 3])
    facts = run(src, tmp_path / "out", detect=False)
    assert facts["train"] + facts["test"] == 18
    assert sum(facts["skipped"].values()) == 3 and facts["skipped"]["empty file"] == 1
    skipped = (tmp_path / "out" / "skipped.txt").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in skipped) == [
        "person 0/empty.jpg", "person 1/junk.png", "person 2/cut.jpg"]


def test_encoded_records_decode_to_the_raw_pixels(tmp_path):
    src = people(tmp_path / "in")
    run(src, tmp_path / "raw", detect=False)
    run(src, tmp_path / "png", detect=False, encode_type="png")
    raw = records(tmp_path / "raw" / "train_lmdb")
    enc = records(tmp_path / "png" / "train_lmdb")
    assert [k for k, _ in raw] == [k for k, _ in enc]
    assert all(d.encoded and d.data[:4] == b"\x89PNG" for _, d in enc)
    with DatumReader(str(tmp_path / "png" / "train_lmdb")) as reader:
        images, _ = reader.next_batch(len(enc))
    np.testing.assert_array_equal(images.reshape(len(raw), -1),
                                  np.stack([np.frombuffer(d.data, np.uint8) for _, d in raw]))


def test_listfile_with_root_spaces_and_label_gaps(tmp_path):
    src = people(tmp_path / "in", counts=(3, 3, 3))
    listfile = tmp_path / "list.txt"
    # Labels 0, 5, 9: kept classes are renumbered 0..2 in label order; names = shared folder.
    listfile.write_text("".join(f"person {p}/{n}.{'png' if n % 2 else 'jpg'} {lab}\n"
                                for p, lab in ((2, 9), (0, 0), (1, 5)) for n in range(3)))
    run(listfile, tmp_path / "out", root=str(src), detect=False)
    assert (tmp_path / "out" / "labels.txt").read_text() == "person 0\nperson 1\nperson 2\n"
    for key, d in records(tmp_path / "out" / "train_lmdb"):
        assert d.label == int(key.split("/")[0][-1])


def test_class_selection(tmp_path):
    src = people(tmp_path / "in", counts=(3, 8, 5, 9))
    facts = run(src, tmp_path / "a", detect=False, min_images=5)
    assert (tmp_path / "a" / "labels.txt").read_text() == "person 1\nperson 2\nperson 3\n"
    facts = run(src, tmp_path / "b", detect=False, max_classes=2)
    assert (tmp_path / "b" / "labels.txt").read_text() == "person 1\nperson 3\n"
    assert facts["train"] + facts["test"] == 17
    with pytest.raises(UserError, match="no class has at least 10 images"):
        run(src, tmp_path / "c", detect=False, min_images=10)


def test_detection_crops_and_as_is_inputs(tmp_path):
    skdata = pytest.importorskip("skimage.data")
    (tmp_path / "in" / "eileen").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "in" / "eileen" / "a.jpg"), skdata.astronaut()[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "in" / "eileen" / "b.png"), np.full((50, 50), 7, np.uint8))
    # an LFW-style tight crop: the face fills the image, so the margin is shrunk to fit
    tight = (skdata.lfw_subset()[0] * 255).round().astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in" / "eileen" / "c.png"), cv2.resize(tight, (100, 100)))
    facts = run(tmp_path / "in", tmp_path / "out", test_fraction=0)
    assert facts["crops"] == {"face": 1, "as-is": 1, "face-fitted": 1}
    assert facts["test"] == 0
    from bnface_caffe.cli.build_lmdb import summary
    facts["outdir"], facts["synthetic"] = "out", False
    assert ("Crops: 2 detected faces (1 with the margin shrunk to stay inside the image: tight "
            "crops, the face fills the image), 0 centre crops") in summary(facts)


def test_existing_output_needs_overwrite_and_is_replaced_whole(tmp_path):
    src = people(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        run(src, out, detect=False)
    run(src, out, detect=False, overwrite=True)
    assert not (out / "old.txt").exists() and (out / "train_lmdb" / "data.mdb").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_failure_mid_build_leaves_nothing_and_keeps_the_old_output(tmp_path, monkeypatch):
    src = people(tmp_path / "in")
    out = tmp_path / "out"
    run(src, out, detect=False)
    before = (out / "train.txt").read_text()
    real_write = pack.write_lmdb

    def crash_after_train(path, *args, **kwargs):
        if path.endswith("test_lmdb"):
            raise KeyboardInterrupt  # as if Ctrl-C arrived mid-build
        return real_write(path, *args, **kwargs)
    monkeypatch.setattr(pack, "write_lmdb", crash_after_train)
    with pytest.raises(KeyboardInterrupt):
        run(src, out, detect=False, overwrite=True, seed=9)
    assert (out / "train.txt").read_text() == before  # old build untouched
    with pytest.raises(KeyboardInterrupt):
        run(src, tmp_path / "new", detect=False)
    assert not (tmp_path / "new").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []  # no temp left


def test_parallel_workers_give_the_same_database(tmp_path):
    src = people(tmp_path / "in")
    run(src, tmp_path / "one", detect=False, workers=1)
    run(src, tmp_path / "two", detect=False, workers=2)
    for name in ("train_lmdb", "test_lmdb"):
        a = [(k, d.SerializeToString()) for k, d in records(tmp_path / "one" / name)]
        b = [(k, d.SerializeToString()) for k, d in records(tmp_path / "two" / name)]
        assert a == b


def read_listfile_lines(path):
    return [line.rsplit(" ", 1) for line in path.read_text().splitlines()]


def test_synthetic_holdout_renders_extra_identities_and_keeps_training_data(tmp_path):
    common = dict(synthetic=True, identities=4, images_per_identity=3, test_fraction=0.34)
    plain = build.build(build.Options(outdir=str(tmp_path / "a"), workers=1, **common))
    held = build.build(build.Options(outdir=str(tmp_path / "b"), workers=1,
                                     holdout_identities=2, **common))
    assert held["holdout_classes"] == 2 and held["holdout"] == 6
    assert plain["holdout_classes"] == 0 and not (tmp_path / "a" / "holdout.txt").exists()
    for name in ("train.txt", "test.txt", "labels.txt", "mean.binaryproto"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for lmdb_name in ("train_lmdb", "test_lmdb"):
        a = [(k, d.SerializeToString()) for k, d in records(tmp_path / "a" / lmdb_name)]
        b = [(k, d.SerializeToString()) for k, d in records(tmp_path / "b" / lmdb_name)]
        assert a == b
    listed = read_listfile_lines(tmp_path / "b" / "holdout.txt")
    assert listed == [[f"holdout/id{k:04d}/{j:04d}.png", str(k - 4)]
                      for k in (4, 5) for j in range(3)]
    from bnface_caffe.data import synthetic
    for path, _ in listed:                    # the PNG is the rendered 50x50 face
        k, j = int(path.split("/")[1][2:]), int(path.split("/")[2][:4])
        png = cv2.imread(str(tmp_path / "b" / path), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(png, synthetic.render(0, k, j))


def test_real_holdout_removes_whole_people_chosen_with_the_seed(tmp_path):
    src = people(tmp_path / "in", counts=(3, 4, 1, 5, 3))   # person 2 has one image
    facts = run(src, tmp_path / "out", detect=False, holdout_identities=2, seed=5)
    out = tmp_path / "out"
    train_people = set((out / "labels.txt").read_text().splitlines())
    listed = read_listfile_lines(out / "holdout.txt")
    held_people = {path.split("/")[1] for path, _ in listed}
    assert len(held_people) == 2 and "person 2" not in held_people   # needs two images
    assert train_people | held_people == {f"person {p}" for p in range(5)}
    assert not train_people & held_people
    assert facts["holdout_classes"] == 2 and facts["classes"] == 3
    for name in ("train.txt", "test.txt"):          # no held-out image is trained or tested on
        for path, _ in read_listfile_lines(out / name):
            assert path.split("/")[0] in train_people
    labels = {}
    for path, label in listed:                      # holdout/<person>/<n>.png, one label each
        person, file = path.split("/")[1:]
        labels.setdefault(person, set()).add(label)
        stem = file[:-4]
        original = next((src / person).glob(f"{stem}.*"))
        np.testing.assert_array_equal(cv2.imread(str(out / path), cv2.IMREAD_UNCHANGED),
                                      expected_crop(original))
    assert sorted(len(v) for v in labels.values()) == [1, 1]
    assert sorted(labels[p].pop() for p in sorted(held_people)) == ["0", "1"]
    again = run(src, tmp_path / "again", detect=False, holdout_identities=2, seed=5)
    assert (tmp_path / "again" / "holdout.txt").read_text() == (out / "holdout.txt").read_text()
    assert again["holdout"] == facts["holdout"]
    with pytest.raises(UserError, match="cannot hold out 5 identities"):
        run(src, tmp_path / "x", detect=False, holdout_identities=5)
    few = people(tmp_path / "few", counts=(1, 1, 3))
    with pytest.raises(UserError, match="3 classes are usable, 1 of them with the two images"):
        run(few, tmp_path / "y", detect=False, holdout_identities=2)


def test_listfile_holdout_names_people_by_their_labels(tmp_path):
    src = people(tmp_path / "in", counts=(2, 2, 2))
    listfile = tmp_path / "list.txt"
    listfile.write_text("".join(f"person {p}/{n}.{'png' if n % 2 else 'jpg'} {p}\n"
                                for p in range(3) for n in range(2)))
    names = tmp_path / "names.txt"
    names.write_text("ann\nbob\ncid\n")
    run(listfile, tmp_path / "out", root=str(src), detect=False, holdout_identities=1,
        label_names=str(names))
    listed = read_listfile_lines(tmp_path / "out" / "holdout.txt")
    person = listed[0][0].split("/")[1]
    assert person in {"ann", "bob", "cid"}
    assert [p for p, _ in listed] == [f"holdout/{person}/person {'abc'.index(person[0])}_{n}.png"
                                      for n in range(2)]
    assert person not in (tmp_path / "out" / "labels.txt").read_text().split()
