"""Test-wide settings: quiet TensorFlow logs, deterministic seeds, and two logical CPU devices for MirroredStrategy."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices let tests run the multi-replica path; they must be configured before TF initialises.
_cpus = tf.config.list_physical_devices("CPU")
if _cpus:
    try:
        tf.config.set_logical_device_configuration(
            _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
        )
    except RuntimeError:
        pass  # already initialised by an earlier import; multi-replica tests skip themselves then


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


REPO = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    """A TFDS data dir holding the built `nlvl_synthetic/small` dataset (built once per test session)."""
    import sys

    sys.path.insert(0, os.path.join(REPO, "tfds_builders"))
    from nlvl_synthetic import nlvl_synthetic_dataset_builder

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    nlvl_synthetic_dataset_builder.Builder(config="small", data_dir=data_dir).download_and_prepare()
    return data_dir
