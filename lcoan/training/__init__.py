"""Training: :mod:`.train` (the loop; ``python -m lcoan.train`` with the flags of :mod:`.cli`),
:mod:`.data` (patch pairs), :mod:`.resume` (resume states), :mod:`.log` (the run's log.csv, curve and
machine segments) and :mod:`.machine` (the one description of the machine a command runs on)."""
