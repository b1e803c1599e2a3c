"""Build the native part (atomics, futex park/wake, ring protocol, histogram) as engine._native."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "engine._native",
            sources=["native/mm_native.c"],
            include_dirs=["native"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
