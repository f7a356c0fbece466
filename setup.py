"""Builds the `turbo` package: turbo/ and its native module turbo._turbo, from turbo_py.c
(which includes turbo.h).

    pip install . --no-build-isolation     (metadata is in pyproject.toml)"""
from setuptools import Extension, setup

setup(
    packages=["turbo"],
    package_data={"turbo": ["pages/*.html"]},
    ext_modules=[
        Extension(
            "turbo._turbo",
            sources=["turbo_py.c"],
            depends=["turbo.h"],
            extra_compile_args=["-O3", "-Wall", "-Wextra"],
            libraries=["pthread"],
        )
    ],
)
