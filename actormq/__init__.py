"""actormq: an actor-model MQTT 3.1.1 / 5.0 broker on multiprocessing workers."""

__version__ = "0.1.0"
