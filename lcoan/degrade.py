"""Temporary alias of lcoan.imaging.degrade while train.py, data.py and attention_report.py move (issue 26)."""
import sys

from .imaging import degrade as _module

sys.modules[__name__] = _module
