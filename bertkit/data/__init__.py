"""Pretraining data: documents and sentences (documents), NSP pairs (nsp), MLM masking (masking),
memory-mapped shards (shards), the two-pass corpus builder (build) and batches (batching)."""
