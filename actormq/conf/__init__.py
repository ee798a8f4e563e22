"""Configuration: the schema of every key and the loader of files, environment and flags."""

from actormq.conf.load import Config, default_config, load_config

__all__ = ["Config", "default_config", "load_config"]
