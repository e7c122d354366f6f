"""Reference answers that benchmarks and tests need: the tiled flash-attention kernel and the
attention FLOP count. They equal graded exercises of notebook 07, so they live here, on the
instructor's side, where no student installs or imports them."""
