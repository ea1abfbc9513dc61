"""Analysis: policy-vs-ground-truth metrics, redundancy studies, attributions.

- :mod:`adafocus.analysis.policy_metrics` -- chosen boxes and frames against the ground truth.
- :mod:`adafocus.analysis.redundancy` -- spatial (crop size x placement), temporal (frames used,
  leave-one-frame-out) and sample-wise (exit step vs difficulty) redundancy, as DataFrames.
- :mod:`adafocus.analysis.attributions` -- captum attributions of the classifier given the
  policy's (fixed) choices: integrated gradients, occlusion in time and space, Grad-CAM on the
  focus patches and glance frames, and the pointing game.
"""
