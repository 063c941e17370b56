"""bertkit: BERT end to end on PyTorch.

Public names are imported lazily, so `import bertkit` stays fast and the CLI starts quickly;
`from bertkit import BertModel` works as usual.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "BertkitError": "bertkit.errors",
    "data_dir": "bertkit.settings",
    "set_verbosity": "bertkit.log",
    # tokenizers
    "Tokenizer": "bertkit.tokenizers.tokenizer",
    "Encoding": "bertkit.tokenizers.encoding",
    # model, heads, checkpoints
    "BertConfig": "bertkit.model.config",
    "BertModel": "bertkit.model.bert",
    "BertPreTrainedModel": "bertkit.model.pretrained",
    "BertForPreTraining": "bertkit.model.heads",
    "BertForMaskedLM": "bertkit.model.heads",
    "BertForNextSentencePrediction": "bertkit.model.heads",
    "BertForSequenceClassification": "bertkit.model.heads",
    "BertForTokenClassification": "bertkit.model.heads",
    "BertForQuestionAnswering": "bertkit.model.heads",
    "convert_google_checkpoint": "bertkit.convert",
    "embed": "bertkit.inference",
    "token_embeddings": "bertkit.inference",
    "TokenEmbeddings": "bertkit.inference",
    "fill_mask": "bertkit.inference",
    "quantize_int8": "bertkit.model.quantize",
    # fine-tuning tasks and pipelines
    "pipeline": "bertkit.pipelines",
    "finetune": "bertkit.tasks.finetune",
    "evaluate": "bertkit.tasks.finetune",
    "FinetuneSettings": "bertkit.tasks.finetune",
    # pretraining data, training loop, pretraining
    "Masker": "bertkit.data.masking",
    "PairBuilder": "bertkit.data.nsp",
    "PretrainingData": "bertkit.data.shards",
    "build_pretraining_data": "bertkit.data.build",
    "build_optimizer": "bertkit.train.optim",
    "linear_schedule": "bertkit.train.optim",
    "TrainConfig": "bertkit.train.loop",
    "pretrain": "bertkit.train.pretrain",
    "PretrainSettings": "bertkit.train.pretrain",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bertkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
