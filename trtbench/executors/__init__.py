"""Executors run a sweep's points somewhere (this process, this node's GPUs, a cluster) and deliver each
record to the store. They know nothing of backends beyond the `PointRunner` they are handed."""
