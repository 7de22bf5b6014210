"""The extractor as a SavedModel: uint8 frames in, I3D features out, the preset's preprocessing inside the graph.

Decoding stays in Python (PyAV, `extraction.features_from_video`); a server needs TensorFlow only. Written with
`keras.export.ExportArchive`, which saves one set of variables that both the restore op and every signature use (a
plain `tf.saved_model.save` of a module holding a Keras 3 model saves two), so the export also answers through TF1's
session loader (TF Serving's); no function is marked for XLA. The network's graph is saved once: the endpoints call
`crop_features`.

Signatures (also callable as attributes of `tf.saved_model.load(export_dir)`):
    serving_default = video_features(frames uint8 [T, H, W, 3]) -> features float32 [rows, 1024]
    window_features(windows uint8 [B, L, H, W, 3]) -> features float32 [B, F, 1024]
    preprocess(frames uint8 [N, H, W, 3]) -> crops uint8 [N, crop, crop, 3]
    crop_features(windows uint8 [B, L, crop, crop, 3]) -> features float32 [B, F, 1024]
    metadata() -> metadata: a JSON string (the preset, the weights file and its sha256, the classifier width)
"""

import json
import os
import shutil

import keras
import tensorflow as tf

from nlvl_tf.video import extraction
from nlvl_tf.video import weights as weights_lib


def export(weights_path, preset, export_dir):
    """Writes the extractor SavedModel for `weights_path` and `preset` to `export_dir`; returns its metadata."""
    extractor = extraction.load_extractor(weights_path, preset)
    metadata = {
        **extractor.metadata(),
        "weights": os.path.basename(os.path.normpath(weights_path)),
        "weights_sha256": weights_lib.fingerprint(weights_path),
    }
    save(extractor, export_dir, metadata)
    return metadata


def save(extractor, export_dir, metadata=None):
    """Exports an in-memory FeatureExtractor. The directory is written beside the target and renamed into place."""
    metadata = json.dumps(metadata or extractor.metadata(), sort_keys=True)
    archive = keras.export.ExportArchive()  # not .track(model): that saves every variable a second time
    for name, function, output in (
        ("serving_default", extractor.video_features, "features"),
        ("window_features", extractor.window_features, "features"),
        ("preprocess", extractor.preprocess, "crops"),
        ("crop_features", extractor.crop_features, "features"),
    ):
        archive.add_endpoint(name, _named_output(function, output), function.input_signature)
    archive.add_endpoint("metadata", lambda: {"metadata": tf.constant(metadata)}, [])
    export_dir = os.path.normpath(export_dir)
    partial = f"{export_dir}.partial"
    if os.path.exists(partial):
        shutil.rmtree(partial)
    archive.write_out(partial, verbose=False)
    if os.path.exists(export_dir):
        shutil.rmtree(export_dir)
    os.replace(partial, export_dir)


def _named_output(function, name):
    """The function with its one output named in the signature ({name: tensor})."""
    return lambda inputs: {name: function(inputs)}
