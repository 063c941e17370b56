"""Subword tokenization: WordPiece, BPE and byte-level BPE -- train a vocabulary, encode, decode.

The pipeline is normalizer -> pre-tokenizer -> model -> post-processor, each a small class in its
own module, with character offsets carried through; `Tokenizer` (tokenizer.py) is the front.
"""

from bertkit.tokenizers.batch import BatchEncoding
from bertkit.tokenizers.encoding import Encoding
from bertkit.tokenizers.tokenizer import Tokenizer

__all__ = ["Tokenizer", "Encoding", "BatchEncoding"]
