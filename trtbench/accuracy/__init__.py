"""Accuracy of what a configuration generates: scores against references and the targets they must meet."""
