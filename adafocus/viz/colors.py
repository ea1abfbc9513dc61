"""The workbench's one colour language: how the truth and the policy's boxes are drawn, everywhere.

Every picture of a box (explorers, filmstrips, trajectory plots, GIFs and mp4s, plotly figures, the
data preview) takes its colour, line style and legend text from :data:`MARKS`:

==============  =====================================  ==========  ==========================
key             what                                   colour      line
==============  =====================================  ==========  ==========================
``truth``       the true box, object visible           white       solid
``hidden``      the true box, object hidden            white       dashed
``focused``     the patch at a frame the policy chose  orange      solid, thicker
``interpolated`` the policy's box between those frames sky blue    dotted
==============  =====================================  ==========  ==========================

The colours are from the Okabe-Ito palette (white, orange ``#E69F00``, sky blue ``#56B4E9``), told
apart by readers with any common colour-vision deficiency, and the line styles tell them apart in
greyscale too. The benchmark's digits take any bright hue and its clutter is dark, so no hue is
safe on its own: every box is drawn with a thin black **halo** (:data:`HALO`), which keeps a white
or orange line visible on a bright digit and on dark clutter alike. Random and center patches are
patches at chosen frames: they are drawn as ``focused``.

Helpers render the key in each medium: :func:`legend_html` (ipywidgets, notebooks),
:func:`legend_handles` (matplotlib), :func:`plotly_legend_traces` (plotly) and :func:`legend_band`
(a strip under every frame of a GIF or mp4, with the frame counter); :func:`describe` names a mark
in prose, so notebook text can be generated from the palette instead of typed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Mark:
    """How one kind of box is drawn: colour, line style, relative width, and its words."""

    label: str  # legend text
    color_name: str  # the colour in prose
    rgb: RGB
    dash: str = "solid"  # solid | dashed | dotted
    width: float = 1.0  # relative to the medium's normal line width

    @property
    def hex(self) -> str:
        return hex_color(self.rgb)

    @property
    def mpl_linestyle(self) -> str:
        return {"solid": "-", "dashed": "--", "dotted": ":"}[self.dash]

    @property
    def plotly_dash(self) -> str:
        return {"solid": "solid", "dashed": "dash", "dotted": "dot"}[self.dash]

    @property
    def css_border(self) -> str:
        return self.dash

    def raster_dash(self, width: int) -> tuple[int, int] | None:
        """``(on, off)`` pixels along a raster outline ``width`` pixels thick; ``None`` for solid."""
        if self.dash == "solid":
            return None
        return (3 * width, 2 * width) if self.dash == "dashed" else (width, width)


WHITE: RGB = (255, 255, 255)
ORANGE: RGB = (230, 159, 0)  # Okabe-Ito orange
SKY_BLUE: RGB = (86, 180, 233)  # Okabe-Ito sky blue
VERMILLION: RGB = (213, 94, 0)  # Okabe-Ito vermillion
HALO: RGB = (0, 0, 0)  # the outline around every box line

TRUTH = Mark("true box", "white", WHITE, "solid")
HIDDEN = Mark("true box, object hidden", "white", WHITE, "dashed")
FOCUSED = Mark("patch (focused frame)", "orange", ORANGE, "solid", 1.5)
INTERPOLATED = Mark("policy box (interpolated)", "sky blue", SKY_BLUE, "dotted")
MARKS: dict[str, Mark] = {"truth": TRUTH, "hidden": HIDDEN, "focused": FOCUSED, "interpolated": INTERPOLATED}

# the rest of the language: what is not a box
GLANCE_RGB: RGB = SKY_BLUE  # glance steps (exit chart, frame weights w over the glance frames)
FOCUS_RGB: RGB = ORANGE  # focus steps, chosen-frame markers
THRESHOLD_RGB: RGB = VERMILLION  # the early-exit threshold
VISIBLE_RGB: RGB = WHITE  # "object visible" markers
HIDDEN_RGB: RGB = (90, 90, 90)  # "object hidden" markers
VISIBLE_SHADE = "#e4e4e4"  # background of frames where the object is visible, on white paper
DARK_BACKGROUND: RGB = (24, 24, 24)  # behind thumbnails and legend swatches


COLOR_NAMES: dict[RGB, str] = {WHITE: "white", ORANGE: "orange", SKY_BLUE: "sky blue", VERMILLION: "vermillion"}


def color_name(rgb: RGB) -> str:
    """The palette colour ``rgb`` in words (``GLANCE_RGB`` -> ``'sky blue'``), for generated prose."""
    return COLOR_NAMES[tuple(rgb)]


def hex_color(rgb: Sequence[int]) -> str:
    """``(230, 159, 0)`` -> ``'#e69f00'``."""
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


def describe(key: str) -> str:
    """A mark in words, for prose: ``describe("hidden")`` -> ``'white, dashed'``."""
    mark = MARKS[key]
    return mark.color_name if mark.dash == "solid" else f"{mark.color_name}, {mark.dash}"


def color_key(keys: Iterable[str] = tuple(MARKS)) -> str:
    """One sentence naming each mark: ``'true box: white; true box, object hidden: white, dashed; ...'``."""
    return "; ".join(f"{MARKS[k].label}: {describe(k)}" for k in keys)


# ----------------------------------------------------------------------------- HTML (explorers, notebooks)


def legend_html(keys: Iterable[str], extra: Sequence[tuple[RGB, str]] = ()) -> str:
    """Legend items whose swatch and label never separate (each item is one unbreakable inline box).

    A box swatch is a small outlined rectangle drawn like the box (colour, dash pattern, black halo,
    on the frames' dark background); ``extra`` adds filled swatches ``(rgb, label)`` (e.g. bars).
    """
    def item(swatch: str, text: str) -> str:
        return ('<span class="adafocus-legend-item" style="display:inline-flex;align-items:center;'
                f'white-space:nowrap;margin:0 12px 2px 0">{swatch}'
                f'<span class="adafocus-label" style="margin-left:5px">{html.escape(text)}</span></span>')

    def box_swatch(mark: Mark) -> str:
        dash = {"solid": "", "dashed": ' stroke-dasharray="5 3"', "dotted": ' stroke-dasharray="2 2"'}[mark.dash]
        rect = 'x="3" y="3" width="18" height="10"'
        return (f'<svg class="adafocus-swatch" width="24" height="16" style="flex:none">'
                f'<rect x="0" y="0" width="24" height="16" fill="{hex_color(DARK_BACKGROUND)}"/>'
                f'<rect {rect} fill="none" stroke="{hex_color(HALO)}" stroke-width="{2 * mark.width + 2}"/>'
                f'<rect {rect} fill="none" stroke="{mark.hex}" stroke-width="{2 * mark.width}"{dash}/></svg>')

    def fill_swatch(rgb: RGB) -> str:
        return (f'<span class="adafocus-swatch" style="display:inline-block;flex:none;width:16px;height:12px;'
                f'background:{hex_color(rgb)};border:1px solid {hex_color(DARK_BACKGROUND)}"></span>')

    items = [item(box_swatch(MARKS[k]), MARKS[k].label) for k in keys]
    items += [item(fill_swatch(rgb), text) for rgb, text in extra]
    return '<div class="adafocus-legend" style="display:flex;flex-wrap:wrap;align-items:center">' + \
        "".join(items) + "</div>"


def show_color_key(keys: Iterable[str] = tuple(MARKS)) -> Any:
    """The legend as a notebook display object (``IPython.display.HTML``)."""
    from IPython.display import HTML

    return HTML(legend_html(keys))


# ----------------------------------------------------------------------------- matplotlib


def halo_effects(line_width: float) -> list:
    """matplotlib path effects that draw a black halo under a line ``line_width`` points wide."""
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=line_width + 1.6, foreground=hex_color(HALO))]


def legend_handles(keys: Iterable[str], line_width: float = 1.6) -> list:
    """matplotlib legend handles (lines in the marks' colour and style, with the halo) for ``fig.legend``."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=MARKS[k].hex, linestyle=MARKS[k].mpl_linestyle, label=MARKS[k].label,
                   linewidth=line_width * MARKS[k].width, path_effects=halo_effects(line_width * MARKS[k].width))
            for k in keys]


# ----------------------------------------------------------------------------- plotly


def plotly_rect(box: Sequence[float], key: str, width: float = 2.0) -> list[dict[str, Any]]:
    """A box as two plotly rectangle shapes (black halo, then the mark) in image coordinates.

    ``go.Image`` centers pixel ``i`` on ``i``, so the continuous box moves by -0.5.
    """
    mark = MARKS[key]
    x0, y0, x1, y1 = (float(v) - 0.5 for v in box)
    w = width * mark.width

    def rect(color: str, lw: float) -> dict[str, Any]:
        return dict(type="rect", xref="x", yref="y", x0=x0, y0=y0, x1=x1, y1=y1, name=key,
                    line=dict(color=color, width=lw, dash=mark.plotly_dash))

    return [rect(hex_color(HALO), w + 2), rect(mark.hex, w)]


def plotly_legend_traces(keys: Iterable[str], width: float = 2.0) -> list:
    """Empty line traces whose only job is a legend entry per mark (shapes have none in an animation)."""
    import plotly.graph_objects as go

    return [go.Scatter(x=[None], y=[None], mode="lines", name=MARKS[k].label, hoverinfo="skip",
                       line=dict(color=MARKS[k].hex, width=width * MARKS[k].width + 1, dash=MARKS[k].plotly_dash))
            for k in keys]


# ----------------------------------------------------------------------------- raster (GIF, mp4)


@lru_cache(maxsize=4)
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def legend_band(width: int, keys: Sequence[str], counter: str, font_size: int = 13) -> np.ndarray:
    """A dark band ``(h, width, 3)`` uint8 for under an animation frame: ``counter`` (e.g. ``'frame 3/16'``)
    on the first line, then one swatch and label per mark, wrapped to ``width``."""
    from PIL import Image, ImageDraw

    font, pad, sw = _font(font_size), 6, 18
    line_h = font_size + 6
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    items, x, y = [], pad, pad + line_h  # (x, y, key) of each item; the counter's line first
    for k in keys:
        w = sw + 5 + int(probe.textlength(MARKS[k].label, font=font)) + 14
        if x + w > width - pad and x > pad:
            x, y = pad, y + line_h
        items.append((x, y, k))
        x += w
    img = Image.new("RGB", (width, y + line_h + pad if keys else pad + line_h + pad), DARK_BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((pad, pad), counter, fill=WHITE, font=font)
    for x, y, k in items:
        mark, mid = MARKS[k], y + line_h // 2 - 1
        band = np.zeros((6, sw, 3), np.uint8)
        band[:] = DARK_BACKGROUND
        line = np.zeros((6, sw), bool)
        dash = mark.raster_dash(2)
        on = np.ones(sw, bool) if dash is None else (np.arange(sw) % sum(dash)) < dash[0]
        line[2:4, :] = on
        halo = _dilate(line) & ~line
        band[halo], band[line] = HALO, mark.rgb
        img.paste(Image.fromarray(band), (x, mid - 3))
        draw.text((x + sw + 5, y + 2), mark.label, fill=WHITE, font=font)
    return np.asarray(img)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """A boolean mask grown by one pixel in the 8 directions."""
    out = mask.copy()
    H, W = mask.shape
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            src = mask[max(0, -dy):H - max(0, dy), max(0, -dx):W - max(0, dx)]
            out[max(0, dy):H - max(0, -dy), max(0, dx):W - max(0, -dx)] |= src
    return out


def with_legend(frame: np.ndarray, keys: Sequence[str], counter: str) -> np.ndarray:
    """``frame (H, W, 3)`` uint8 with :func:`legend_band` underneath."""
    band = legend_band(frame.shape[1], keys, counter)
    return np.concatenate([frame, band], axis=0)
