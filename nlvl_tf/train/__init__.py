"""The training loop: optimizer and schedule, the distributed step, checkpoints and best-checkpoint selection."""
