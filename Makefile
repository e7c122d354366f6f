# The two commands of the README. Each one sets up .venv first (idempotent, fast when done).
.PHONY: setup demo test release
setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/workbook demo

test: setup
	.venv/bin/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder -q --durations=15

release: setup
	.venv/bin/workbook release
