"""Where a student's kernel runs (see kernelspec.py for the overview)."""
