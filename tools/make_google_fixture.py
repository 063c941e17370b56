"""Make the tiny Google-format BERT checkpoint in tests/fixtures/google_bert_tiny/ with TensorFlow.

TensorFlow is a dependency of this script only (never of bertkit or its tests). Run it in a
throwaway environment:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu numpy
    /tmp/tfvenv/bin/python tools/make_google_fixture.py

It builds a TF1-style graph with google-research/bert's variable names and computations (tanh GELU,
-10000 mask adder, LayerNorm eps 1e-12, MLM decoder tied to the word embeddings, NSP on the pooled
[CLS]), fills it with random weights that are *not* BERT's small init (so a wrong transpose or a
swapped gamma/beta shows up in the outputs), saves `bert_model.ckpt` with tf.compat.v1.train.Saver,
and stores the TF-computed outputs for fixed inputs in expected_outputs.npz. Adam slots and
global_step are saved too, as in Google's pretraining checkpoints, so the reader must skip them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
tf1.disable_eager_execution()

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "google_bert_tiny"
CONFIG = {
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "max_position_embeddings": 40,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "type_vocab_size": 2,
    "vocab_size": 60,
}
WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "paris",
    "is",
    "a",
    "beautiful",
    "city",
    "i",
    "love",
    "he",
    "got",
    "bit",
    "by",
    "python",
    "my",
    "favorite",
    "programming",
    "language",
    "dog",
    "ran",
    "to",
    "park",
    "and",
    "we",
    "enjoyed",
    "game",
    "turn",
    "radio",
    "play",
    "##s",
    "##ed",
    "##ing",
    "un",
    "##like",
    "good",
    "bad",
    "movie",
    "song",
    "not",
    "was",
    "it",
    "day",
    "great",
    "sam",
    "hated",
    "##ly",
    ".",
    ",",
    "?",
    "!",
    "'",
]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS[: CONFIG["vocab_size"] - 5]


def rand(name, shape, std, mean=0.0):
    return tf1.get_variable(
        name, shape=shape, dtype=tf.float32, initializer=tf1.random_normal_initializer(mean=mean, stddev=std)
    )


def layer_norm(x, scope):
    with tf1.variable_scope(scope):
        H = x.shape[-1]
        beta = rand("beta", [H], 0.1)
        gamma = rand("gamma", [H], 0.2, mean=1.0)
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + 1e-12) * gamma + beta


def dense(x, units, scope, std=0.3):
    with tf1.variable_scope(scope):
        kernel = rand("kernel", [x.shape[-1], units], std)  # [in, out]: TF's layout
        bias = rand("bias", [units], 0.1)
        return tf.tensordot(x, kernel, axes=1) + bias


def gelu(x):  # google-research/bert's gelu: the tanh formula
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))


def build(input_ids, input_mask, segment_ids):
    c = CONFIG
    B, T = input_ids.shape
    H, A = c["hidden_size"], c["num_attention_heads"]
    D = H // A
    outputs = {}
    with tf1.variable_scope("bert"):
        with tf1.variable_scope("embeddings"):
            word = rand("word_embeddings", [c["vocab_size"], H], 0.5)
            x = tf.gather(word, input_ids)
            types = rand("token_type_embeddings", [c["type_vocab_size"], H], 0.5)
            x += tf.matmul(tf.one_hot(segment_ids, c["type_vocab_size"]), types)
            positions = rand("position_embeddings", [c["max_position_embeddings"], H], 0.5)
            x += positions[:T][None]
            x = layer_norm(x, "LayerNorm")
        outputs["embedding_output"] = x
        adder = (1.0 - tf.cast(input_mask[:, None, None, :], tf.float32)) * -10000.0
        with tf1.variable_scope("encoder"):
            for i in range(c["num_hidden_layers"]):
                with tf1.variable_scope(f"layer_{i}"):
                    with tf1.variable_scope("attention"):
                        with tf1.variable_scope("self"):

                            def heads(t):
                                return tf.transpose(tf.reshape(t, [B, T, A, D]), [0, 2, 1, 3])

                            q = heads(dense(x, H, "query"))
                            k = heads(dense(x, H, "key"))
                            v = heads(dense(x, H, "value"))
                            scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(D) + adder
                            probs = tf.nn.softmax(scores)
                            outputs[f"attention_probs_{i}"] = probs
                            context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [B, T, H])
                        with tf1.variable_scope("output"):
                            x = layer_norm(dense(context, H, "dense") + x, "LayerNorm")
                    with tf1.variable_scope("intermediate"):
                        inner = gelu(dense(x, c["intermediate_size"], "dense"))
                    with tf1.variable_scope("output"):
                        x = layer_norm(dense(inner, H, "dense") + x, "LayerNorm")
                    outputs[f"layer_output_{i}"] = x
        outputs["sequence_output"] = x
        with tf1.variable_scope("pooler"):
            pooled = tf.tanh(dense(x[:, 0], H, "dense"))
        outputs["pooled_output"] = pooled
    with tf1.variable_scope("cls"):
        with tf1.variable_scope("predictions"):
            with tf1.variable_scope("transform"):
                t = layer_norm(gelu(dense(x, H, "dense")), "LayerNorm")
            bias = rand("output_bias", [c["vocab_size"]], 0.1)
            outputs["mlm_logits"] = tf.tensordot(t, tf.transpose(word), axes=1) + bias
        with tf1.variable_scope("seq_relationship"):
            weights = rand("output_weights", [2, H], 0.3)  # [2, H]: used with transpose_b
            bias = rand("output_bias", [2], 0.1)
            outputs["nsp_logits"] = tf.matmul(pooled, weights, transpose_b=True) + bias
    return outputs


def main() -> None:
    tf1.set_random_seed(1234)
    rng = np.random.default_rng(1234)
    B, T = 3, 12
    input_ids = rng.integers(5, CONFIG["vocab_size"], size=(B, T)).astype(np.int32)
    input_ids[:, 0] = 2  # [CLS]
    lengths = [12, 9, 5]
    input_mask = np.zeros((B, T), np.int32)
    segment_ids = np.zeros((B, T), np.int32)
    for b, n in enumerate(lengths):
        input_mask[b, :n] = 1
        input_ids[b, n - 1] = 3  # [SEP]
        input_ids[b, n:] = 0  # [PAD]
        segment_ids[b, n // 2 : n] = 1
    graph_outputs = build(tf.constant(input_ids), tf.constant(input_mask), tf.constant(segment_ids))
    weights = tf1.trainable_variables()
    # optimizer state as in a pretraining checkpoint: global_step and Adam moments per weight
    extra = [tf1.get_variable("global_step", shape=[], dtype=tf.int64, initializer=tf1.zeros_initializer())]
    for var in weights:
        name = var.op.name
        extra.append(tf1.get_variable(name + "/adam_m", shape=var.shape, initializer=tf1.zeros_initializer()))
        extra.append(tf1.get_variable(name + "/adam_v", shape=var.shape, initializer=tf1.zeros_initializer()))
    saver = tf1.train.Saver(weights + extra)
    OUT.mkdir(parents=True, exist_ok=True)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        values = sess.run(graph_outputs)
        saver.save(sess, str(OUT / "bert_model.ckpt"), write_meta_graph=False)
    for leftover in ("checkpoint",):
        if (OUT / leftover).exists():
            os.unlink(OUT / leftover)
    (OUT / "bert_config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    (OUT / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    np.savez(
        OUT / "expected_outputs.npz",
        input_ids=input_ids,
        input_mask=input_mask,
        segment_ids=segment_ids,
        **{k: v.astype(np.float32) for k, v in values.items()},
    )
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({total / 1024:.0f} KiB): {sorted(p.name for p in OUT.iterdir())}")
    print(f"TensorFlow {tf.__version__}")


if __name__ == "__main__":
    main()
