"""What trtbench knows about GPUs and models without asking the hardware."""
