"""Networks of Uni-AdaFocus: backbones (glance and focus), policies, patch extraction, heads, the model."""
