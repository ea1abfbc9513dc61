"""Analysis: policy-vs-ground-truth metrics, early-exit calibration, redundancy studies, attributions.

- :mod:`adafocus.analysis.policy_metrics` -- chosen boxes and frames against the ground truth.
- :mod:`adafocus.analysis.early_exit` -- exit thresholds calibrated on validation, the accuracy-cost
  curves they give, and the measured cost of leaving at each exit (pure functions of exit logits;
  the step-by-step inference itself is :mod:`adafocus.models.exits`).
- :mod:`adafocus.analysis.readouts` -- which logits an analysis reads: the last exit, or the focus or
  glance network alone.
- :mod:`adafocus.analysis.redundancy` -- spatial (crop size x placement), temporal (frames used,
  leave-one-frame-out) and sample-wise (exit step vs difficulty) redundancy, as DataFrames.
- :mod:`adafocus.analysis.attributions` -- captum attributions of the classifier given the
  policy's (fixed) choices: integrated gradients, occlusion in time and space, Grad-CAM on the
  focus patches and glance frames, and the pointing game.
"""
