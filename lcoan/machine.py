"""Temporary alias of lcoan.training.machine while train.py, data.py and attention_report.py move (issue 26)."""
import sys

from .training import machine as _module

sys.modules[__name__] = _module
