# The two commands of the README. Each one sets up .venv first (idempotent, fast when done).
.PHONY: setup demo test test-notebook release
setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/workbook demo

test: setup
	.venv/bin/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder -q --durations=15

# One notebook's tests while you work on it: nbval, its autograde round trip, course sync.
#   make test-notebook NB=01-attention
test-notebook: setup
	.venv/bin/python -m pytest -n 2 --dist loadgroup -q solutions/$(NB) tests/test_roundtrip.py \
		tests/test_course_sync.py tests/test_notebook_outputs.py -k $(NB)

release: setup
	.venv/bin/workbook release
