"""Inputs: person folders and Caffe listfiles (split at the last space), with clear errors."""
import pytest

from bnface_caffe.data import sources
from bnface_caffe.errors import UserError


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_folder_scan_is_sorted_and_keeps_only_images(tmp_path):
    for rel in ["bob/2.jpg", "bob/10.JPG", "alice/a b.png", "alice/sub/c.jpeg", "alice/notes.txt",
                "alice/.hidden.jpg", ".trash/x.jpg", "loose.jpg", "carol/readme.md"]:
        touch(tmp_path / rel)
    assert sources.scan_folder(str(tmp_path)) == [
        ("alice/a b.png", "alice"), ("alice/sub/c.jpeg", "alice"),
        ("bob/10.JPG", "bob"), ("bob/2.jpg", "bob")]


def test_folder_without_images_or_missing_is_an_error(tmp_path):
    touch(tmp_path / "p" / "readme.txt")
    with pytest.raises(UserError, match="no images found"):
        sources.scan_folder(str(tmp_path))
    with pytest.raises(UserError, match="no such folder"):
        sources.scan_folder(str(tmp_path / "nope"))


def test_listfile_splits_at_the_last_space(tmp_path):
    listfile = tmp_path / "list.txt"
    listfile.write_text("a/x 1.jpg 3\nb/y.jpg 0\n\nc d/e f.png 12\r\n")
    assert sources.read_listfile(str(listfile)) == [("a/x 1.jpg", 3), ("b/y.jpg", 0),
                                                    ("c d/e f.png", 12)]


@pytest.mark.parametrize("line, message, col", [
    ("just_a_path.jpg", "no label", None),
    ("a.jpg seven", "label 'seven' is not an integer", 7),
    ("a.jpg -1", "label -1 out of range", 7),
    ("a.jpg 99999999999", "out of range", 7),
])
def test_listfile_errors_name_file_and_line(tmp_path, line, message, col):
    listfile = tmp_path / "list.txt"
    listfile.write_text(f"ok.jpg 0\n{line}\n")
    with pytest.raises(UserError) as err:
        sources.read_listfile(str(listfile))
    where = f"{listfile}:2" + (f":{col}" if col else "") + ": "
    assert str(err.value).startswith(where) and message in str(err.value)


def test_label_names_bound_the_labels(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("ann\nben\n")
    listfile = tmp_path / "list.txt"
    listfile.write_text("a.jpg 1\nb.jpg 2\n")
    with pytest.raises(UserError, match=r"list.txt:2:7: label 2 out of range 0..1"):
        sources.read_listfile(str(listfile), sources.read_names(str(names)))
    with pytest.raises(UserError, match="no such listfile"):
        sources.read_listfile(str(tmp_path / "none.txt"))
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(UserError, match="no 'path label' lines"):
        sources.read_listfile(str(tmp_path / "blank.txt"))
