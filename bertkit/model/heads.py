"""Task heads on top of BertModel, each a small module with Hugging Face's names and signature.

Pretraining: MaskedWordPredictions (dense + GELU + LayerNorm, then a decoder that shares the word
embedding matrix, plus a per-word bias) and SeqRelationship (a 2-way linear on the pooled [CLS]).
Fine-tuning: sentence (pair) classification or regression on [CLS], a label per token, and the
start/end vectors S and E of extractive question answering.

The MLM head can score only the masked positions (`masked_positions=`): with 15% masking that is
~7x fewer rows through the [H x 30522] decoder, the largest matmul of pretraining.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertkit.constants import IGNORE_INDEX
from bertkit.errors import BertkitError
from bertkit.model.bert import BertModel, Dropout, activation
from bertkit.model.config import BertConfig
from bertkit.model.outputs import (
    BertForPreTrainingOutput,
    MaskedLMOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from bertkit.model.pretrained import BertPreTrainedModel


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """The seed's MaskedWordPredictions: hidden [.., H] -> a score for every word [.., V]."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)  # tied to word embeddings
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(x), self.decoder.weight, self.bias)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictions(x)


class BertOnlyNSPHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)  # the seed's SeqRelationship

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.seq_relationship(pooled)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


def select_masked(hidden: torch.Tensor, labels: torch.Tensor | None, masked_positions):
    """Keep only the rows the MLM loss looks at.

    masked_positions: None (every position), "labels" (where labels != IGNORE_INDEX), a bool mask [B, T]
    (-> rows [N, H] in row-major order), or integer positions [B, K] as in Google's
    `masked_lm_positions` (-> [B, K, H]). Labels of shape [B, T] are selected the same way.
    """
    if masked_positions is None:
        return hidden, labels
    if isinstance(masked_positions, str):
        if masked_positions != "labels" or labels is None:
            raise BertkitError(f"masked_positions='labels' needs labels ({IGNORE_INDEX} at unscored positions)")
        masked_positions = labels.ne(IGNORE_INDEX)
    full_shape = tuple(hidden.shape[:2])
    if masked_positions.dtype == torch.bool:
        if tuple(masked_positions.shape) != full_shape:
            raise BertkitError(
                f"a boolean masked_positions must have the input's shape {list(full_shape)}, "
                f"got {list(masked_positions.shape)}"
            )
        hidden = hidden[masked_positions]  # [B, T, H] -> [N, H]
        if labels is not None and tuple(labels.shape) == full_shape:
            labels = labels[masked_positions]  # [N]
    else:
        if masked_positions.dim() != 2 or masked_positions.shape[0] != hidden.shape[0]:
            raise BertkitError("integer masked_positions must have shape [batch, num_predictions]")
        index = masked_positions.long()
        hidden = torch.gather(hidden, 1, index[..., None].expand(-1, -1, hidden.shape[-1]))  # [B, K, H]
        if labels is not None and tuple(labels.shape) == full_shape:
            labels = torch.gather(labels, 1, index)  # [B, K]
    return hidden, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if labels.numel() * logits.shape[-1] != logits.numel():
        raise BertkitError(
            f"MLM labels {list(labels.shape)} do not match the scored positions {list(logits.shape[:-1])}"
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX)


class _TiedLMMixin:
    """The MLM decoder shares the word-embedding matrix (one tensor, saved once)."""

    bert: BertModel
    cls: BertPreTrainingHeads | BertOnlyMLMHead

    def tie_weights(self) -> None:
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight


class BertForPreTraining(_TiedLMMixin, BertPreTrainedModel):
    """BERT with both pretraining heads; loss = MLM cross-entropy + NSP cross-entropy."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        next_sentence_label=None,
        masked_positions=None,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=True,
    ):
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        hidden, labels = select_masked(out.last_hidden_state, labels, masked_positions)
        prediction_logits = self.cls.predictions(hidden)
        nsp_logits = self.cls.seq_relationship(out.pooler_output)  # [B, 2]
        lm = mlm_loss(prediction_logits, labels) if labels is not None else None
        nsp = (
            F.cross_entropy(nsp_logits.float(), next_sentence_label.reshape(-1))
            if next_sentence_label is not None
            else None
        )
        losses = [x for x in (lm, nsp) if x is not None]
        result = BertForPreTrainingOutput(
            loss=sum(losses) if losses else None,
            prediction_logits=prediction_logits,
            seq_relationship_logits=nsp_logits,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
            mlm_loss=lm,
            nsp_loss=nsp,
        )
        return result if return_dict else result.to_tuple()


class BertForMaskedLM(_TiedLMMixin, BertPreTrainedModel):
    """Fill in [MASK]: a score for every vocabulary word at each (masked) position."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        masked_positions=None,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=True,
    ):
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        hidden, labels = select_masked(out.last_hidden_state, labels, masked_positions)
        logits = self.cls(hidden)
        result = MaskedLMOutput(
            loss=mlm_loss(logits, labels) if labels is not None else None,
            logits=logits,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )
        return result if return_dict else result.to_tuple()


class BertForNextSentencePrediction(BertPreTrainedModel):
    """IsNext (0) / NotNext (1) from the pooled [CLS] vector."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = BertOnlyNSPHead(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=True,
    ):
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        logits = self.cls(out.pooler_output)
        loss = F.cross_entropy(logits.float(), labels.reshape(-1)) if labels is not None else None
        result = NextSentencePredictorOutput(
            loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions
        )
        return result if return_dict else result.to_tuple()


def _classifier_dropout(config: BertConfig) -> nn.Dropout:
    p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
    return Dropout(p)


class BertForSequenceClassification(BertPreTrainedModel):
    """A sentence (or pair) -> num_labels scores from the pooled [CLS]; one output = regression."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=True,
    ):
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            cls_only=True,
            skip_padding=self.training,
        )  # the classifier reads the pooled [CLS] only
        logits = self.classifier(self.dropout(out.pooler_output))  # [B, num_labels]
        loss = None
        if labels is not None:
            problem = self.config.problem_type
            if problem is None:
                if self.num_labels == 1:
                    problem = "regression"
                elif not labels.dtype.is_floating_point:
                    problem = "single_label_classification"
                else:
                    problem = "multi_label_classification"
            if problem == "regression":
                if self.num_labels == 1:
                    loss = F.mse_loss(logits.squeeze().float(), labels.squeeze().float())
                else:
                    loss = F.mse_loss(logits.float(), labels.float())
            elif problem == "single_label_classification":
                loss = F.cross_entropy(logits.reshape(-1, self.num_labels).float(), labels.reshape(-1))
            else:
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        result = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions
        )
        return result if return_dict else result.to_tuple()


class BertForTokenClassification(BertPreTrainedModel):
    """A label for every token (NER); labels of IGNORE_INDEX (special tokens, later word pieces) are skipped."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = _classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=True,
    ):
        # training where every padded position is labelled IGNORE_INDEX (as collators pad): nobody reads
        # those positions, so the encoder may skip them
        skip = (
            self.training
            and labels is not None
            and attention_mask is not None
            and bool(labels[attention_mask == 0].eq(IGNORE_INDEX).all())
        )
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            skip_padding=skip,
        )
        logits = self.classifier(self.dropout(out.last_hidden_state))  # [B, T, num_labels]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, self.num_labels).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX
            )
        result = TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions
        )
        return result if return_dict else result.to_tuple()


class BertForQuestionAnswering(BertPreTrainedModel):
    """Extractive QA: start score S.R_i and end score E.R_i for every token i (one linear to 2)."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        if config.num_labels != 2:
            raise BertkitError(
                f"BertForQuestionAnswering predicts a start and an end score per token: "
                f"num_labels must be 2, got {config.num_labels}"
            )
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)  # rows: S, E
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        start_positions=None,
        end_positions=None,
        output_hidden_states=False,
        output_attentions=False,
        return_dict=True,
    ):
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )
        start_logits, end_logits = self.qa_outputs(out.last_hidden_state).unbind(-1)  # [B, T, 2] -> 2 x [B, T]
        loss = None
        if start_positions is not None and end_positions is not None:
            # positions outside the window (answer truncated away) are ignored, as in Hugging Face
            ignored = start_logits.shape[1]
            start = start_positions.reshape(-1).clamp(0, ignored)
            end = end_positions.reshape(-1).clamp(0, ignored)
            loss = (
                F.cross_entropy(start_logits.float(), start, ignore_index=ignored)
                + F.cross_entropy(end_logits.float(), end, ignore_index=ignored)
            ) / 2
        result = QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits.contiguous(),
            end_logits=end_logits.contiguous(),
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )
        return result if return_dict else result.to_tuple()
