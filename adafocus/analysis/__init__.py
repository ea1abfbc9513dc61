"""Analysis: policy-vs-ground-truth metrics, redundancy studies, attributions."""
