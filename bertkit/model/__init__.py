"""The BERT network (config, encoder, task heads) with Hugging Face's names."""

from bertkit.model.bert import BertModel
from bertkit.model.config import BertConfig
from bertkit.model.heads import (
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from bertkit.model.pretrained import BertPreTrainedModel

__all__ = [
    "BertConfig",
    "BertModel",
    "BertPreTrainedModel",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForNextSentencePrediction",
    "BertForSequenceClassification",
    "BertForQuestionAnswering",
    "BertForTokenClassification",
]
