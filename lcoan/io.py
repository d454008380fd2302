"""Temporary alias of lcoan.imaging.io while train.py, data.py and attention_report.py move (issue 26)."""
import sys

from .imaging import io as _module

sys.modules[__name__] = _module
