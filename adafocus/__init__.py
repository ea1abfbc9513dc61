"""AdaFocus Workbench: learn, explore and reproduce dynamic computation for video recognition."""

from adafocus.config import Config, ConfigError, DataConfig, ModelConfig, TrainConfig, get_config

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "DataConfig", "ModelConfig", "TrainConfig", "get_config", "__version__"]
