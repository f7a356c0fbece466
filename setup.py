"""Builds the `turbo` extension module from turbo_py.c (which includes turbo.h).

    pip install . --no-build-isolation     (metadata is in pyproject.toml)"""
import sys

from setuptools import Extension, setup

setup(
    packages=[],  # one extension module; the repository's folders are not packages
    ext_modules=[
        Extension(
            "turbo",
            sources=["turbo_py.c"],
            depends=["turbo.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
            libraries=["pthread"] + (["dl"] if sys.platform.startswith("linux") else []),
        )
    ],
)
