"""Configuration: the schema of every key and the loader of files, environment and flags."""
