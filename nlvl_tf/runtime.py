"""Process-wide set-up shared by the entry points: seeds, determinism, precision, strategy and XLA choice; the
bounds that make a lost multi_worker peer an error instead of a hang."""

import contextlib
import json
import os
import re

import keras
import tensorflow as tf
from absl import logging

# No public API sets the coordination service's timeouts: the strategy's own set-up, with bounds (TF is pinned < 2.22).
from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
from tensorflow.python.distribute import multi_worker_util
from tensorflow.python.eager import context

from nlvl_tf import errors

STRATEGIES = ("default", "mirrored", "multi_worker")
# What a collective op raises when a peer died, hung or never connected (once the coordination service notices).
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError)


class WorkerLostError(ConnectionError):
    """A multi_worker peer died, hung or never connected: every worker has to be started again."""


def configure(config):
    """Seeds Python, numpy, TF and Keras from `config.seed`; enables op determinism and the precision policy of
    config.train."""
    keras.utils.set_random_seed(config.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(config.train.mixed_precision or "float32")


def make_strategy(train_config):
    """`default` (one device), `mirrored` (all local GPUs, else `num_cpu_replicas` logical CPU devices) or
    `multi_worker` (the cluster in the TF_CONFIG environment variable), from config.train."""
    config = train_config
    name = config.strategy
    if name not in STRATEGIES:
        raise errors.InputError(f"config.train.strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise errors.InputError(
                "config.train.strategy=multi_worker needs the TF_CONFIG environment variable (cluster and task)"
            )
        json.loads(os.environ["TF_CONFIG"])  # a malformed TF_CONFIG fails here with the JSON error
        _bound_coordination(config)
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < config.num_cpu_replicas:
        physical = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(
                physical, [tf.config.LogicalDeviceConfiguration()] * config.num_cpu_replicas
            )
        except RuntimeError as error:
            raise errors.InputError(
                f"mirrored strategy on CPU needs {config.num_cpu_replicas} logical CPU devices, "
                f"configured before TensorFlow starts: {error}"
            ) from error
        cpus = tf.config.list_logical_devices("CPU")
    devices = [device.name for device in cpus[: config.num_cpu_replicas]]
    logging.info("mirrored strategy over logical CPU devices %s", devices)
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())


def use_xla(train_config):
    """XLA compilation of the training step: `auto` turns it on with GPUs only (on this project's CPUs XLA made the
    step 4-10x slower, docs/benchmarks.md)."""
    value = str(train_config.xla).lower()
    if value == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    if value in ("true", "false"):
        return value == "true"
    raise errors.InputError(f"config.train.xla must be auto, true or false, got {train_config.xla!r}")


def worker_scratch_dir(workdir, strategy):
    """Where a multi_worker worker that is not the chief writes its own checkpoints (removed when training ends)."""
    resolver = strategy.cluster_resolver
    return os.path.join(workdir, "workers", f"{resolver.task_type}_{resolver.task_id}")


def is_chief(strategy):
    """True for the process that writes checkpoints, summaries and results."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def _bound_coordination(config):
    """Sets up the coordination service as MultiWorkerMirroredStrategy would, with two bounds from the config.

    Every worker of TF_CONFIG's cluster must connect within `multi_worker_connect_timeout` seconds (by default the
    others would wait forever for one that never starts), and a worker that sends no heartbeat for
    `multi_worker_heartbeat_timeout` seconds (killed, hung, or its machine gone) makes the others' collective ops fail.
    A timeout on the collective ops themselves would also fire when one worker is only slower (a long evaluation).
    """
    cluster = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
        for job in ("chief", "worker")
        if job in cluster.jobs
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=int(1000 * config.multi_worker_connect_timeout),
        heartbeat_timeout_in_ms=int(1000 * config.multi_worker_heartbeat_timeout),
    )
    context.context().coordination_service.cluster_register_with_barrier = True  # makes the connect bound hold


@contextlib.contextmanager
def reporting_lost_workers(train_config, workdir):
    """Under `multi_worker`, turns the collective-op error of a lost peer into a `WorkerLostError` that says which
    worker and what to do."""
    config = train_config
    if config.strategy != "multi_worker":
        yield
        return
    try:
        yield
    except PEER_ERRORS as error:
        raise WorkerLostError(
            f"multi_worker: lost contact with another worker ({_peer_failure(error)}); a worker that dies, hangs or "
            f"never starts stops them all (config.train.multi_worker_heartbeat_timeout="
            f"{config.multi_worker_heartbeat_timeout}, multi_worker_connect_timeout="
            f"{config.multi_worker_connect_timeout} s). Start every worker again with the same command: training "
            f"resumes from the last checkpoint in {workdir}"
        ) from error


def _peer_failure(error):
    """The useful part of TensorFlow's message: which worker and what happened to it."""
    message = re.sub(r"\{\{[^}]*\}\}\s*", "", str(getattr(error, "message", error)))
    message = message.rsplit("Collective ops is aborted by:", 1)[-1]
    for marker, what in (
        ("stopped sending heartbeats", "stopped sending heartbeats"),
        ("Some timed out task names", "never connected"),
    ):
        if marker in message:  # the task names follow the marker
            tasks = re.match(r"[):\s]*((?:/job:\w+/replica:\d+/task:\d+\s*)*)", message.split(marker, 1)[1])
            return f"{', '.join(tasks.group(1).split()) or 'a worker'} {what}"
    if "leader task was preempted/died" in message:
        return "the leader (the chief, or worker 0), which runs the coordination service, died or cannot be reached"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0].split(". ")[0][:200] if lines else type(error).__name__
