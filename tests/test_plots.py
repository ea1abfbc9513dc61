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
