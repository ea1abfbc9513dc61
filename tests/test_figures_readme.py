"""figures/README.md lists every figure adafocus/figures.py writes, with the supervision of the models shown."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def written_figures() -> set[str]:
    """The figure names figures.py saves: ``fs.save(fig, "name")``, ``fig_dir / "name..."``."""
    source = (ROOT / "adafocus" / "figures.py").read_text()
    names = set(re.findall(r"""\.save\(.*,\s*"([\w-]+)"\)""", source))
    names |= {n.split(".")[0] for n in re.findall(r"""fig_dir\s*/\s*"([\w.-]+)\"""", source)}
    return names


def test_figures_readme_lists_every_figure_with_its_supervision():
    readme = (ROOT / "figures" / "README.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w-]+)[.{/][^\n]*$", readme, re.MULTILINE)}
    names = written_figures()
    assert {"accuracy_vs_macs", "training_signal", "learning_to_look", "policy_filmstrip"} <= names
    assert names <= set(rows), f"not in figures/README.md: {sorted(names - set(rows))}"
    for name in names:
        cells = [c.strip() for c in rows[name].strip().strip("|").split(" | ")]
        assert len(cells) == 4 and all(cells), f"{name}: file | what it shows | paper figure it mirrors | supervision"
        assert re.search(r"`(none|hinted|oracle)`|^no trained model", cells[3]), \
            f"{name}: say the supervision of the models shown (or that no trained model is shown)"
    assert "gif" in rows["learning_to_look"]
