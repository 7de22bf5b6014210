"""nlvl-tf: span-based natural language video localization (VSLBase, VSLNet, VSLNet-L) in TF2 / Keras 3."""

__version__ = "0.1.0"
