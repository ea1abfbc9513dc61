"""Result plots: one curve per method, and one early-exit curve per budget."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from adafocus.viz.plots import accuracy_vs_macs, accuracy_vs_macs_plotly  # noqa: E402

ROWS = pd.DataFrame({
    "method": ["full_frame", "uni_adafocus", "uni_adafocus"] + ["uni_adafocus+exit"] * 4,
    "budget": ["8 frames", "P=16,K=4", "P=24,K=4", "P=16,K=4, rho=1.0", "P=16,K=4, rho=2.0",
               "P=24,K=4, rho=1.0", "P=24,K=4, rho=2.0"],
    "mmacs": [130.0, 9.6, 16.3, 4.3, 8.6, 6.1, 13.7],
    "accuracy": [0.92, 0.91, 0.96, 0.43, 0.87, 0.46, 0.92],
    "rho": [float("nan")] * 3 + [1.0, 2.0, 1.0, 2.0],
})


def test_static_budgets_share_a_curve_and_early_exit_gets_one_per_budget():
    ax = accuracy_vs_macs(ROWS).axes[0]
    lines = {tuple(line.get_xdata()) for line in ax.get_lines()}
    assert (9.6, 16.3) in lines  # Uni-AdaFocus through its budgets, sorted by cost
    assert (4.3, 8.6) in lines and (6.1, 13.7) in lines  # not one zig-zag through both budgets
    assert len(ax.get_lines()) == 4
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == len(set(legend)) == 3  # each method named once


def test_plotly_version_groups_early_exit_curves_under_one_legend_entry():
    fig = accuracy_vs_macs_plotly(ROWS)
    assert len(fig.data) == 4
    assert sum(bool(t.showlegend) for t in fig.data) == 3


# ----------------------------------------------------------------------------- the palette (adafocus.viz.colors)

import itertools  # noqa: E402

import numpy as np  # noqa: E402

from adafocus.viz import colors  # noqa: E402

# Machado et al. (2009) simulation matrices at full severity, on linear RGB
CVD = {"protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                      [-0.003882, -0.048116, 1.051998]],
       "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]],
       "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                      [0.004733, 0.691367, 0.303900]]}
MIN_CVD_DISTANCE = 100  # sRGB units (0-255): two marks of one line style must stay this far apart


def simulate(rgb: tuple[int, int, int], deficiency: str) -> np.ndarray:
    c = np.asarray(rgb, dtype=np.float64) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    out = np.clip(np.asarray(CVD[deficiency]) @ linear, 0, 1)
    return 255 * np.where(out <= 0.0031308, 12.92 * out, 1.055 * out ** (1 / 2.4) - 0.055)


def cvd_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """The smallest distance between two colours as seen with each common colour-vision deficiency."""
    return min(float(np.linalg.norm(simulate(a, d) - simulate(b, d))) for d in CVD)


def test_every_pair_of_marks_differs_in_line_style_or_in_colour_for_colour_blind_readers():
    for (ka, a), (kb, b) in itertools.combinations(colors.MARKS.items(), 2):
        assert a.dash != b.dash or cvd_distance(a.rgb, b.rgb) >= MIN_CVD_DISTANCE, (ka, kb)
        assert a.label != b.label
    # the check can fail: the old green truth and amber policy box looked the same with protanopia
    assert cvd_distance((40, 220, 40), (255, 200, 0)) < 10


def test_the_palette_names_its_colours_for_prose_and_html():
    assert colors.describe("truth") == "white" and colors.describe("hidden") == "white, dashed"
    assert colors.describe("interpolated") == "sky blue, dotted"
    key = colors.color_key()
    assert all(m.label in key for m in colors.MARKS.values())
    html = colors.legend_html(["truth", "focused"], [((1, 2, 3), "a bar")])
    assert html.count('class="adafocus-legend-item"') == 3 and html.count("white-space:nowrap") == 3
    assert 'stroke="#ffffff" stroke-width="2.0"/>' in html, "the truth: a solid white outline"
    assert 'stroke="#e69f00" stroke-width="3.0"/>' in html, "the patch: a thicker solid orange one"
    dotted = colors.legend_html(["interpolated", "hidden"])
    assert 'stroke="#56b4e9" stroke-width="2.0" stroke-dasharray="2 2"' in dotted
    assert 'stroke="#ffffff" stroke-width="2.0" stroke-dasharray="5 3"' in dotted


def test_legend_band_holds_the_counter_and_a_swatch_per_mark():
    keys = ["truth", "focused", "interpolated"]
    a, b = colors.legend_band(320, keys, "frame 1/15"), colors.legend_band(320, keys, "frame 2/15")
    assert a.shape == b.shape and a.shape[1] == 320 and a.dtype == np.uint8 and not np.array_equal(a, b)
    for k in keys:
        assert (a == colors.MARKS[k].rgb).all(-1).any(), k
    narrow = colors.legend_band(120, keys, "frame 1/15")
    assert narrow.shape[0] > a.shape[0], "a narrow band wraps its items into more lines"


def test_notebook_prose_names_only_the_palette_colours():
    """Notebooks 00, 05 and 07 must not describe a box or a bar in a colour the figures no longer draw."""
    import re
    from pathlib import Path

    retired = ["green", "magenta", "amber", "lime", "pink", "purple", "yellow", "red"]
    root = Path(__file__).resolve().parents[1] / "notebooks"
    for name in ("00_tour.py", "05_patch_trajectories.py", "07_early_exit.py"):
        text = (root / name).read_text().lower()
        for word in retired:
            assert not re.search(rf"\b{word}\b", text), f"{name} names '{word}', a colour the figures do not draw"
        assert not re.search(r"(?<!sky )\bblue\b", text), f"{name} names 'blue' (the palette's is 'sky blue')"
