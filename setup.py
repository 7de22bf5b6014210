"""Packaging for nlvl-tf: natural language video localization (VSLBase, VSLNet, VSLNet-L) in TF2/Keras 3."""

import setuptools

setuptools.setup(
    name="nlvl-tf",
    version="0.1.0",
    description="Span-based natural language video localization (VSLBase, VSLNet, VSLNet-L) in TensorFlow 2 / Keras 3.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["nlvl_tf", "nlvl_tf.*"]),
    package_data={"nlvl_tf.serve": ["page/*.html", "page/*.css", "page/*.js"]},  # the page serve.py serves
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10,<4",
        "tensorflow-datasets>=4.9.10,<4.10",
        "gensim>=4.4,<4.5",
        "absl-py>=2.1",
        "ml-collections>=1.0",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "tensorboard>=2.20",  # tf.summary writes TensorBoard scalars; TF 2.21 no longer pulls it in
        # The `tfds` command of tensorflow-datasets 4.9.10 imports these three when it starts, whatever the
        # subcommand: without them `tfds build` crashes.
        "apache-beam>=2.70",
        "mlcroissant>=1.0",
        "importlib_resources",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "dill", "ruff==0.17.6"],  # tfds.testing needs dill
    },
)
