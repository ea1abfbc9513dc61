"""Pictures of what the networks do: matplotlib figures, plotly figures and ipywidgets explorers.

- :mod:`adafocus.viz.colors` -- the one colour language of every box (truth, hidden object, patch at a
  focused frame, interpolated policy box): colours, line styles, halos and legends for HTML,
  matplotlib, plotly and animation frames.
- :mod:`adafocus.viz.plots` -- result figures (accuracy vs MACs, learning curves), PNG/SVG/HTML savers.
- :mod:`adafocus.viz.explorers` -- interactive clip, budget and comparison explorers for notebooks
  (one call each, e.g. ``clip_explorer(ds)``), built on pure ``inputs -> RGB array`` renderers.
- :mod:`adafocus.viz.filmstrips` -- a clip's frames in a row with the true and chosen boxes and the
  temporal weights (``policy_filmstrip``), or with an attribution map (``attribution_filmstrip``).
- :mod:`adafocus.viz.trajectories` -- the patch trajectory over time: center plots, a plotly
  figure with a frame slider, mp4/GIF writers, and ``run_on_video`` for real video files.
"""
