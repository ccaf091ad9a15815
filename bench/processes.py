"""
Worker processes for the benchmarks, started fresh ("spawn", not fork: the parent's
connection pool has threads), each with Django set up from the same settings.

This module imports nothing from the apps, so that a new process can load it before
Django is set up; targets are named by their dotted path and imported after setup.
"""

import importlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import django

CONTEXT = get_context("spawn")


def _close_parent_connections() -> None:
    from bench.database import close_django_connections

    close_django_connections()


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    _close_parent_connections()
    return ProcessPoolExecutor(workers, mp_context=CONTEXT, initializer=django.setup)


def _run(target: str, args: tuple) -> None:
    django.setup()
    module, name = target.rsplit(".", 1)
    getattr(importlib.import_module(module), name)(*args)


def start_process(target: str, *args):
    """Start `target` (a dotted path) in a new process with `args`; returns the Process."""
    _close_parent_connections()
    process = CONTEXT.Process(target=_run, args=(target, args))
    process.start()
    return process
