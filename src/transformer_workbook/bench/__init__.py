"""Benchmarks that need a GPU: ``workbook bench attention`` (see :mod:`.attention`)."""
