"""GPU benchmarks of the reference kernels (``workbook bench``)."""
