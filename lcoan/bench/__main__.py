"""``python -m lcoan.bench``."""
import sys

from .cli import main

sys.exit(main())
