"""Models: backbones, policies, patch cropping, frame sampling, exits, and the registry of variants."""

from adafocus.models.adafocus import AdaFocusOutput, UniAdaFocus
from adafocus.models.registry import create_model, list_models, register_model

__all__ = ["AdaFocusOutput", "UniAdaFocus", "create_model", "list_models", "register_model"]
