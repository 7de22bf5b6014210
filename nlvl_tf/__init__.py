"""nlvl-tf: span-based natural language video localization (VSLBase, VSLNet, VSLNet-L) in TF2 / Keras 3.

The packages follow the way data flows, and each imports only the stages before it:

    video  -> raw video files to feature arrays (decoding, the I3D network, extraction)
    data   -> TFDS examples to model batches (tokenizer, vocabulary, word vectors, resampling, labels, splits)
    model  -> the Keras layers and models, and their losses
    eval   -> predictions to moments and metrics (decoding, metrics, evaluation, baselines, figures)
    train  -> the training loop (optimizer, step, checkpoints, selection of the best checkpoint)
    serve  -> the SavedModel export, `Localizer` and the server

`configs`, `cli`, `runtime` and `workdir` sit at the root because every stage uses them; they import no stage.
`demo` runs the whole loop, so it may import any.
"""

__version__ = "0.1.0"
