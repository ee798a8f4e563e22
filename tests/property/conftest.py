"""Hypothesis settings for the property tests: no per-example deadline. A
deadline is a timing assertion, and the suite runs on loaded CI machines where
one slow example says nothing about the code under test."""

from hypothesis import settings

settings.register_profile("actormq", deadline=None)
settings.load_profile("actormq")
