"""The BERT network (config, encoder, task heads) with Hugging Face's names."""

from bertkit.model.bert import BertModel, BertPreTrainedModel
from bertkit.model.config import BertConfig
from bertkit.model.heads import (
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)

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
