"""``python -m lcoan.train``: the training command line; the code is :mod:`lcoan.training.train`."""
from .training.train import main

if __name__ == "__main__":
    main()
