"""Configuration: the model (``model.py``) and loading it from file and environment."""

from shopsync.config.model import Config, Datatype, System

__all__ = ["Config", "Datatype", "System"]
