"""Temporary alias of lcoan.imaging.metrics while train.py, data.py and attention_report.py move (issue 26)."""
import sys

from .imaging import metrics as _module

sys.modules[__name__] = _module
