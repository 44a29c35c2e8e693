"""Guided sweeps (`strategy: guided`): the simulator, refitted to the run's own measurements after each batch,
decides which points are worth measuring; every other point is reported with its prediction and why."""
