"""Process-wide set-up shared by the entry points: seeds, determinism, precision, strategy and XLA choice."""

import json
import os

import keras
import tensorflow as tf
from absl import logging

STRATEGIES = ("default", "mirrored", "multi_worker")


def configure(config):
    """Seeds Python, numpy, TF and Keras from `config.seed`; enables op determinism and the precision policy."""
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(config.mixed_precision or "float32")


def make_strategy(config):
    """`default` (one device), `mirrored` (all local GPUs, else `num_cpu_replicas` logical CPU devices) or
    `multi_worker` (the cluster in the TF_CONFIG environment variable)."""
    name = config.strategy
    if name not in STRATEGIES:
        raise ValueError(f"config.strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("config.strategy=multi_worker needs the TF_CONFIG environment variable (cluster and task)")
        json.loads(os.environ["TF_CONFIG"])  # a malformed TF_CONFIG fails here with the JSON error
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < config.num_cpu_replicas:
        physical = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                physical, [tf.config.LogicalDeviceConfiguration()] * config.num_cpu_replicas)
        except RuntimeError as error:
            raise RuntimeError(f"mirrored strategy on CPU needs {config.num_cpu_replicas} logical CPU devices, "
                               f"configured before TensorFlow starts: {error}") from error
        cpus = tf.config.list_logical_devices("CPU")
    devices = [device.name for device in cpus[: config.num_cpu_replicas]]
    logging.info("mirrored strategy over logical CPU devices %s", devices)
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())


def use_xla(config):
    """XLA compilation of the training step: `auto` turns it on with GPUs only (on this project's CPUs XLA made the
    step 4-10x slower, docs/benchmarks.md)."""
    value = str(config.xla).lower()
    if value == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(f"config.xla must be auto, true or false, got {config.xla!r}")


def is_chief(strategy):
    """True for the process that writes checkpoints, summaries and results."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)
