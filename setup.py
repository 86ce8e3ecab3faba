"""The core's build: its import package ``restplug`` is the folder ``core/``, a layout that
setup.cfg's ``find:`` cannot name, so every subpackage found there is listed here instead."""

from setuptools import find_packages, setup

setup(packages=["restplug", *(f"restplug.{name}" for name in find_packages("core"))])
