# All metadata lives in setup.cfg; this file only lets old tools run `setup.py`.
from setuptools import setup

setup()
