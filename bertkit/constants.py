"""Names and numbers shared across packages, written once."""

from __future__ import annotations

# Label id that losses skip (cross-entropy's ignore_index): unmasked positions in MLM, special
# tokens and later word pieces in NER, padding everywhere.
IGNORE_INDEX = -100

# BERT's special tokens in the order of its vocab.txt ([PAD]=0 ... in trained vocabularies).
BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# Written by `bertkit finetune` beside the weights: the task, label set and recipe of the run.
FINETUNE_SETTINGS_FILE = "finetune.json"

# The random seed every command and settings object starts from unless told otherwise.
DEFAULT_SEED = 42

# `bertkit.pipeline` / `bertkit predict` task names. Hugging Face's names map to the bertkit task
# they correspond to (they answer with Hugging Face's output keys). Kept here, away from the
# pipeline classes, so the CLI can offer them as choices without importing torch.
PIPELINE_TASKS = ("sentiment", "classify", "nli", "nsp", "qa", "ner", "fill-mask", "embed")
HF_PIPELINE_TASKS = {
    "text-classification": "classify",
    "sentiment-analysis": "sentiment",
    "question-answering": "qa",
    "token-classification": "ner",
    "ner": "ner",
    "feature-extraction": "embed",
    "fill-mask": "fill-mask",
}
ALL_PIPELINE_TASKS = PIPELINE_TASKS + tuple(n for n in HF_PIPELINE_TASKS if n not in PIPELINE_TASKS)
