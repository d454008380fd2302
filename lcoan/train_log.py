"""Temporary alias of lcoan.training.log while train.py, data.py and attention_report.py move (issue 26)."""
import sys

from .training import log as _module

sys.modules[__name__] = _module
