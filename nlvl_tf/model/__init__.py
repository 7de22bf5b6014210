"""The VSLNet family as Keras 3 layers and models, their losses, and reading a trained model back from a workdir."""
