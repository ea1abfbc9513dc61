"""Pictures of what the networks do: matplotlib figures, plotly figures and ipywidgets explorers.

- :mod:`adafocus.viz.explorers` -- interactive clip, budget and comparison explorers for notebooks
  (one call each, e.g. ``clip_explorer(ds)``), built on pure ``inputs -> RGB array`` renderers.
"""
