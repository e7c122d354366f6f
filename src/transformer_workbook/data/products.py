"""A procedural product catalogue for cross-modal search: small pictures and their descriptions.

Every product has five attributes: a kind (mug, shirt, lamp, chair, bottle, hat), a colour, a
pattern (plain, striped, dotted), a size (small, large) and a position on a background tone.
``render`` draws one picture with PIL and ``describe`` writes one sentence about it in one of
several phrasings. The train/test split holds out whole (kind, colour, pattern) combinations:
a "green striped mug" of the test split never appears in training, although green things,
striped things and mugs all do. ``real_photos`` returns a few colour photographs that
scikit-image and matplotlib ship in their wheels (no download) for out-of-distribution queries.

Everything is seeded: the same arguments give the same pictures and sentences on any machine.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

KINDS = ("mug", "shirt", "lamp", "chair", "bottle", "hat")
COLOURS = {
    "red": (205, 40, 40),
    "green": (40, 150, 60),
    "blue": (45, 85, 205),
    "yellow": (235, 200, 40),
    "purple": (130, 60, 170),
    "orange": (240, 130, 30),
}
PATTERNS = ("plain", "striped", "dotted")
SIZES = ("small", "large")
BACKGROUNDS = ((236, 236, 230), (205, 212, 220), (226, 214, 196), (190, 190, 190))
ATTRIBUTES = {"kind": KINDS, "colour": tuple(COLOURS), "pattern": PATTERNS, "size": SIZES}

_KIND_WORDS = {
    "mug": ("mug", "coffee mug", "cup"),
    "shirt": ("shirt", "t-shirt", "tee"),
    "lamp": ("lamp", "table lamp", "desk lamp"),
    "chair": ("chair", "wooden chair", "seat"),
    "bottle": ("bottle", "water bottle", "flask"),
    "hat": ("hat", "sun hat", "cap"),
}
_PATTERN_ADJ = {"plain": ("plain", "solid"), "striped": ("striped", "stripy"),
                "dotted": ("dotted", "polka-dot")}
_PATTERN_NOUN = {"plain": ("no pattern", "a plain finish"), "striped": ("stripes", "a striped print"),
                 "dotted": ("dots", "a dotted print")}
_SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
_TEMPLATES = (
    "a {colour} {padj} {kind}",
    "{size} {colour} {kind} with {pnoun}",
    "{padj} {kind} in {colour}",
    "photo of a {size} {padj} {colour} {kind}",
    "{kind}, {colour}, {pnoun}",
    "a {colour} {kind} with {pnoun}, {size} size",
)


def combinations() -> list[tuple[str, str, str]]:
    """Every (kind, colour, pattern) triple, in a fixed order."""
    return [(k, c, p) for k in KINDS for c in COLOURS for p in PATTERNS]


def held_out_combinations(fraction: float = 0.2, seed: int = 0) -> set[tuple[str, str, str]]:
    """Triples kept out of training. At most one pattern of each (kind, colour) pair is held
    out, and each (kind, pattern) and (colour, pattern) pair keeps at least one triple in
    training, so every single attribute value and every pair of them is still seen."""
    rng = random.Random(seed)
    triples = combinations()
    rng.shuffle(triples)
    target = round(fraction * len(triples))
    held: set[tuple[str, str, str]] = set()
    for k, c, p in triples:
        if len(held) == target:
            break
        if any((k, c, q) in held for q in PATTERNS):
            continue
        kp_left = [t for t in combinations() if t[0] == k and t[2] == p and t not in held]
        cp_left = [t for t in combinations() if t[1] == c and t[2] == p and t not in held]
        if len(kp_left) <= 2 or len(cp_left) <= 2:
            continue
        held.add((k, c, p))
    return held


def describe(attrs: dict, rng: random.Random) -> str:
    """One sentence about a product, in a phrasing drawn from ``rng``."""
    template = rng.choice(_TEMPLATES)
    return template.format(
        colour=attrs["colour"], kind=rng.choice(_KIND_WORDS[attrs["kind"]]),
        padj=rng.choice(_PATTERN_ADJ[attrs["pattern"]]),
        pnoun=rng.choice(_PATTERN_NOUN[attrs["pattern"]]),
        size=rng.choice(_SIZE_WORDS[attrs["size"]]))


def _outline(draw, kind: str, box: tuple[float, float, float, float]) -> None:
    """Draw the silhouette of ``kind`` filled with 255 inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    X = lambda f: x0 + f * w  # noqa: E731
    Y = lambda f: y0 + f * h  # noqa: E731
    if kind == "mug":
        draw.rectangle([X(0.1), Y(0.2), X(0.72), Y(0.95)], fill=255)
        draw.ellipse([X(0.55), Y(0.35), X(0.95), Y(0.75)], fill=255)
        draw.ellipse([X(0.68), Y(0.47), X(0.84), Y(0.63)], fill=0)
    elif kind == "shirt":
        draw.polygon([(X(0.3), Y(0.1)), (X(0.7), Y(0.1)), (X(1.0), Y(0.3)), (X(0.85), Y(0.45)),
                      (X(0.75), Y(0.38)), (X(0.75), Y(0.95)), (X(0.25), Y(0.95)),
                      (X(0.25), Y(0.38)), (X(0.15), Y(0.45)), (X(0.0), Y(0.3))], fill=255)
    elif kind == "lamp":
        draw.polygon([(X(0.3), Y(0.05)), (X(0.7), Y(0.05)), (X(0.9), Y(0.45)),
                      (X(0.1), Y(0.45))], fill=255)
        draw.rectangle([X(0.45), Y(0.45), X(0.55), Y(0.85)], fill=255)
        draw.rectangle([X(0.25), Y(0.85), X(0.75), Y(0.97)], fill=255)
    elif kind == "chair":
        draw.rectangle([X(0.2), Y(0.05), X(0.35), Y(0.55)], fill=255)
        draw.rectangle([X(0.2), Y(0.5), X(0.85), Y(0.62)], fill=255)
        draw.rectangle([X(0.2), Y(0.62), X(0.3), Y(0.97)], fill=255)
        draw.rectangle([X(0.75), Y(0.62), X(0.85), Y(0.97)], fill=255)
    elif kind == "bottle":
        draw.rectangle([X(0.42), Y(0.02), X(0.58), Y(0.3)], fill=255)
        draw.polygon([(X(0.42), Y(0.3)), (X(0.58), Y(0.3)), (X(0.75), Y(0.42)),
                      (X(0.25), Y(0.42))], fill=255)
        draw.rectangle([X(0.25), Y(0.42), X(0.75), Y(0.98)], fill=255)
    elif kind == "hat":
        draw.ellipse([X(0.0), Y(0.55), X(1.0), Y(0.85)], fill=255)
        draw.chord([X(0.22), Y(0.15), X(0.78), Y(1.05)], 180, 360, fill=255)
        draw.rectangle([X(0.22), Y(0.58), X(0.78), Y(0.7)], fill=255)
    else:
        raise ValueError(f"unknown kind {kind!r}; known: {KINDS}")


def render(attrs: dict, size: int = 32, rng: random.Random | None = None) -> np.ndarray:
    """A ``[size, size, 3]`` uint8 picture of one product (drawn at 4x, then downsampled)."""
    from PIL import Image, ImageDraw

    rng = rng or random.Random(0)
    big = 4 * size
    background = rng.choice(BACKGROUNDS)
    scale = {"small": rng.uniform(0.45, 0.6), "large": rng.uniform(0.75, 0.92)}[attrs["size"]]
    side = scale * big
    x0 = rng.uniform(0.02 * big, big - side - 0.02 * big)
    y0 = rng.uniform(0.02 * big, big - side - 0.02 * big)
    mask = Image.new("L", (big, big), 0)
    _outline(ImageDraw.Draw(mask), attrs["kind"], (x0, y0, x0 + side, y0 + side))
    # jitter the colour a little so that no two products share exact pixel values
    colour = tuple(int(min(255, max(0, v + rng.randint(-18, 18)))) for v in COLOURS[attrs["colour"]])
    fill = Image.new("RGB", (big, big), colour)
    paint = ImageDraw.Draw(fill)
    accent = (250, 250, 250) if sum(colour) < 500 else (60, 60, 60)
    step = max(4, int(side / 5))
    if attrs["pattern"] == "striped":
        offset = rng.randint(0, step)
        for y in range(int(y0) - step + offset, int(y0 + side), step):
            paint.rectangle([0, y, big, y + step // 3], fill=accent)
    elif attrs["pattern"] == "dotted":
        r = max(2, step // 4)
        for yy in range(int(y0) + step // 2, int(y0 + side), step):
            for xx in range(int(x0) + step // 2 + (yy // step % 2) * step // 2, int(x0 + side), step):
                paint.ellipse([xx - r, yy - r, xx + r, yy + r], fill=accent)
    elif attrs["pattern"] != "plain":
        raise ValueError(f"unknown pattern {attrs['pattern']!r}; known: {PATTERNS}")
    picture = Image.new("RGB", (big, big), background)
    picture.paste(fill, (0, 0), mask)
    return np.asarray(picture.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


@dataclass(frozen=True)
class Catalogue:
    """Pictures (``[N, H, W, 3]`` uint8), their attributes and one description each."""

    images: np.ndarray
    attributes: list[dict]
    descriptions: list[str]

    def __len__(self) -> int:
        return len(self.descriptions)

    def subset(self, index) -> "Catalogue":
        index = [int(i) for i in index]
        return Catalogue(self.images[index], [self.attributes[i] for i in index],
                         [self.descriptions[i] for i in index])

    def labels(self, attribute: str) -> np.ndarray:
        """Integer labels of one attribute, in the order of ``ATTRIBUTES[attribute]``."""
        values = ATTRIBUTES[attribute]
        return np.array([values.index(a[attribute]) for a in self.attributes])


def make_catalogue(n: int, split: str = "train", size: int = 32, seed: int = 0,
                   held_out: set | None = None) -> Catalogue:
    """``n`` products drawn from the seen combinations (``split="train"``) or only from the
    held-out ones (``split="test"``), evenly over the combinations of the split."""
    held = held_out_combinations() if held_out is None else held_out
    if split == "train":
        pool = [t for t in combinations() if t not in held]
    elif split == "test":
        pool = [t for t in combinations() if t in held]
    else:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    rng = random.Random(f"{split}-{seed}-{size}")
    triples = [pool[i % len(pool)] for i in range(n)]
    rng.shuffle(triples)
    images, attributes, descriptions = [], [], []
    for kind, colour, pattern in triples:
        attrs = {"kind": kind, "colour": colour, "pattern": pattern, "size": rng.choice(SIZES)}
        images.append(render(attrs, size, rng))
        attributes.append(attrs)
        descriptions.append(describe(attrs, rng))
    return Catalogue(np.stack(images), attributes, descriptions)


# Colour photographs inside installed wheels: scikit-image's data module (those that need no
# download) and matplotlib's sample data ("matplotlib:" + file name).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "colorwheel", "hubble_deep_field",
          "immunohistochemistry", "matplotlib:grace_hopper.jpg",
          "matplotlib:Minduka_Present_Blue_Pack.png")


def _photo(name: str) -> np.ndarray:
    if name.startswith("matplotlib:"):
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data(name.split(":", 1)[1])) as image:
            return np.asarray(image.convert("RGB"))
    from skimage import data

    return np.asarray(getattr(data, name)())[..., :3]


def real_photos(size: int = 32, names=PHOTOS) -> dict[str, np.ndarray]:
    """Colour photographs shipped in installed wheels (``PHOTOS``), centre-cropped to a square
    and resized to ``[size, size, 3]`` uint8, keyed by a short name."""
    from PIL import Image

    photos = {}
    for name in names:
        image = _photo(name)
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = Image.fromarray(image[top:top + side, left:left + side])
        short = name.split(":", 1)[-1].rsplit(".", 1)[0].lower()
        photos[short] = np.asarray(square.resize((size, size), Image.Resampling.LANCZOS),
                                   dtype=np.uint8)
    return photos
