"""Backends turn a grid point into an Outcome: `sim` predicts it, `trtllm` measures it.
`select.select_backend` decides which one a sweep uses."""
