"""Shared test set-up.

Under ``CI=true`` a skipped test is a failure unless it needs a GPU: CI installs FFmpeg and the
FiftyOne database, so a test that skips for their absence there hides a broken install.

Without a GPU, Triton kernels run in Triton's CPU interpreter (the ``test_triton_*`` tests). Triton
reads ``TRITON_INTERPRET`` when a kernel is defined, i.e. when ``triton`` and the kernel module are
first imported (``torch.compile`` imports ``triton`` too), so it is set here, before any test runs.
"""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

_GPU_WORDS = ("cuda", "gpu")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() != "true" or not report.skipped:
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    if item.get_closest_marker("gpu") or any(w in reason.lower() for w in _GPU_WORDS):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true (CI must provide this): {reason}"
