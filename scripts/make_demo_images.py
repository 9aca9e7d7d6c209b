"""Draws the demo's lead images (abstract scenes, made here, no third-party material).

Run once; the JPEGs are committed under masthead/publishing/demo/images/.
"""

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "masthead/publishing/demo/images"
SCENES = {
    "river-night": ((18, 32, 64), (240, 190, 90)),
    "council-hall": ((120, 110, 100), (200, 60, 50)),
    "printing-press": ((40, 40, 40), (230, 230, 220)),
    "orchard": ((60, 110, 60), (250, 210, 70)),
    "tram-depot": ((90, 100, 120), (220, 120, 40)),
    "harbour": ((30, 80, 120), (250, 250, 250)),
    "library": ((110, 70, 40), (240, 220, 160)),
    "snowfield": ((200, 210, 225), (60, 70, 90)),
    "market": ((160, 80, 40), (60, 160, 150)),
    "radio-mast": ((50, 60, 90), (255, 90, 80)),
}


def scene(name, base, accent, seed):
    rnd = random.Random(seed)
    w, h = 960, 640
    img = Image.new("RGB", (w, h), base)
    draw = ImageDraw.Draw(img)
    for y in range(h):  # vertical gradient
        t = y / h
        draw.line([(0, y), (w, y)], fill=tuple(int(b * (1 - t * 0.6)) for b in base))
    for _ in range(28):  # blocks suggesting buildings, trees, people
        x = rnd.randint(-50, w)
        bw, bh = rnd.randint(30, 180), rnd.randint(60, 380)
        shade = tuple(min(255, int(c * rnd.uniform(0.4, 1.1))) for c in base)
        draw.rectangle([x, h - bh, x + bw, h], fill=shade)
    for _ in range(12):
        x, y, r = rnd.randint(0, w), rnd.randint(0, h // 2), rnd.randint(6, 40)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=accent)
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    img.save(OUT / f"{name}.jpg", "JPEG", quality=68, optimize=True, progressive=True)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for i, (name, (base, accent)) in enumerate(SCENES.items()):
        scene(name, base, accent, i)
    print("\n".join(sorted(p.name for p in OUT.iterdir())))
