"""Checkpoint files in and out, as plain dicts and tensors: Hugging Face folders (hf.py), Google's
TensorFlow release (google.py over tf_bundle.py, leveldb.py, crc32c.py), config files
(configfiles.py). Nothing here imports bertkit.model: the model calls this package, never the
other way round (bertkit/convert.py, which needs both, sits above them)."""
