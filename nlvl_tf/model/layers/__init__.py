"""Keras 3 layers of the VSLNet model family, one paper module per file."""
