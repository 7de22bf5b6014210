"""From TFDS video examples to model batches: query text, word vectors, feature resampling, labels, splits."""
