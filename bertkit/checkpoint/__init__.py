"""Checkpoint files in and out: Hugging Face folders (hf.py) and Google's TensorFlow release (google.py)."""
