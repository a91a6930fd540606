"""Where the images come from, as a list of (relative path, class name) before labelling:
a folder with one sub-folder per person, or a Caffe listfile (`path label`) with a root."""
import os

from ..errors import UserError, at

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff",
                    ".webp", ".jp2"}
INT32_MAX = 2 ** 31 - 1


def scan_folder(root):
    """[(relative path, person)] for every image file in root/<person>/ (recursively),
    people and files in sorted order."""
    if not os.path.isdir(root):
        raise UserError(f"{root}: no such folder; SOURCE is a folder with one sub-folder per "
                        "person, or a listfile given with --root")
    items = []
    for person in sorted(os.listdir(root)):
        folder = os.path.join(root, person)
        if person.startswith(".") or not os.path.isdir(folder):
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                ext = os.path.splitext(name)[1].lower()
                if not name.startswith(".") and ext in IMAGE_EXTENSIONS:
                    rel = os.path.relpath(os.path.join(dirpath, name), root)
                    items.append((rel.replace(os.sep, "/"), person))
    if not items:
        raise UserError(f"{root}: no images found (expected {root}/<person>/<image>.jpg; "
                        f"image types: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return items


def read_listfile(path, names=None):
    """[(relative path, label)] from a Caffe listfile: `path label` per line, split at the last
    space (paths may contain spaces). `names` (optional list) bounds the labels."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: no such listfile") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read as a text listfile ({err})") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rel, sep, label_text = line.rstrip("\r").rpartition(" ")
        if not sep or not rel.strip():
            raise at(path, f"no label: expected 'relative/path label', got {line.strip()!r}",
                     number)
        try:
            label = int(label_text)
        except ValueError:
            raise at(path, f"label {label_text!r} is not an integer (expected "
                     "'relative/path label')", number, len(rel) + 2) from None
        limit = len(names) - 1 if names is not None else INT32_MAX
        if not 0 <= label <= limit:
            bound = f"--labels names {len(names)} classes" if names is not None else "int32"
            raise at(path, f"label {label} out of range 0..{limit} ({bound})", number,
                     len(rel) + 2)
        items.append((rel, label))
    if not items:
        raise UserError(f"{path}: the listfile holds no 'path label' lines")
    return items


def read_names(path):
    """Label names, one per line (labels.txt format)."""
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.rstrip("\r\n") for line in f]
    except OSError as err:
        raise UserError(f"{path}: cannot read label names ({err.strerror})") from None
    while names and not names[-1]:
        names.pop()
    if not names:
        raise UserError(f"{path}: no label names in it (one name per line)")
    return names
