# Metadata lives in pyproject.toml; this file keeps `python setup.py ...` and old pips working.
from setuptools import setup

setup()
