"""The lecture's tokenization examples, as it gives them (and, where it slips, as the code does).

The lecture is /work/shared/seed/bert-lecture.ko.txt; docs/concepts.md shows the same examples.
"""

from __future__ import annotations

from collections import Counter

from bertkit.tokenizers import Tokenizer
from bertkit.tokenizers.bpe import BPE
from bertkit.tokenizers.pre_tokenizers import WhitespaceSplit
from bertkit.tokenizers.trainers import train_bpe
from bertkit.tokenizers.wordlevel import WordLevel
from bertkit.tokenizers.wordpiece import WordPiece

LECTURE_WORDS = Counter({"cost": 2, "best": 2, "menu": 1, "men": 1, "camel": 1})


def plain(model) -> Tokenizer:
    """A tokenizer that splits at spaces and keeps case: the lecture's toy setting."""
    return Tokenizer(model, pre_tokenizer=WhitespaceSplit())


def test_let_us_start_pretraining_the_model(bert_tok):
    tokens = bert_tok.tokenize("Let us start pretraining the model")
    assert tokens == ["let", "us", "start", "pre", "##train", "##ing", "the", "model"]


def test_i_love_paris_padded_to_seven(bert_tok):
    """tokens=[[CLS], I, love, Paris, [SEP], [PAD], [PAD]] -> ids and attention mask."""
    batch = bert_tok("I love Paris", padding="max_length", max_length=7)
    assert batch["input_ids"] == [101, 1045, 2293, 3000, 102, 0, 0]
    assert batch["attention_mask"] == [1, 1, 1, 1, 1, 0, 0]
    assert bert_tok.convert_ids_to_tokens(batch["input_ids"]) == [
        "[CLS]",
        "i",
        "love",
        "paris",
        "[SEP]",
        "[PAD]",
        "[PAD]",
    ]


def test_word_level_tokenization_meets_an_unknown_word():
    """vocabulary = [game, the, I, played, walked, enjoy]: "enjoyed" is not in it."""
    vocab = {t: i for i, t in enumerate(["<UNK>", "game", "the", "I", "played", "walked", "enjoy"])}
    tok = plain(WordLevel(vocab, unk_token="<UNK>"))
    assert tok.tokenize("I played the game") == ["I", "played", "the", "game"]
    assert tok.tokenize("I enjoyed the game") == ["I", "<UNK>", "the", "game"]


def test_a_trained_word_level_vocabulary_holds_only_the_words_it_saw():
    """The lecture's recipe: split the training text at spaces, add every distinct word."""
    tok = Tokenizer.train(
        ["I played the game", "I walked", "enjoy the game"],
        model="wordlevel",
        min_frequency=1,
        lowercase=False,
        special_tokens=["<UNK>"],
        show_progress=False,
    )
    assert sorted(tok.get_vocab()) == ["<UNK>", "I", "enjoy", "game", "played", "the", "walked"]
    assert tok.tokenize("I enjoyed the game") == ["I", "<UNK>", "the", "game"]


def test_i_enjoyed_the_game_with_subwords(tmp_path):
    """With ##ed in the vocabulary, "enjoyed" splits into enjoy + ##ed instead of [UNK]."""
    tokens = ["[UNK]", "[CLS]", "[SEP]", "game", "the", "i", "play", "walk", "##ed", "enjoy"]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tok = Tokenizer.from_vocab(tmp_path / "vocab.txt")
    assert tok.tokenize("I enjoyed the game") == ["i", "enjoy", "##ed", "the", "game"]
    assert tok.tokenize("I played the game") == ["i", "play", "##ed", "the", "game"]


def test_the_lectures_literal_list_has_ed_without_hashes():
    """vocabulary = [game, the, I, play, walk, ed, enjoy]: a piece after the start of a word is
    looked up with its ## mark, and "##ed" is not in that list, so the whole word is [UNK]."""
    vocab = {t: i for i, t in enumerate(["[UNK]", "game", "the", "I", "play", "walk", "ed", "enjoy"])}
    tok = plain(WordPiece(vocab))
    assert tok.tokenize("I enjoyed the game") == ["I", "[UNK]", "the", "game"]
    assert tok.tokenize("ed") == ["ed"]  # at the start of a word, "ed" is found


def test_bpe_cost_best_menu_men_camel():
    """Vocabulary size 14: the 11 characters, then the merges st, me, men."""
    vocab, merges = train_bpe(LECTURE_WORDS, vocab_size=14, min_frequency=1, show_progress=False)
    assert list(vocab) == list("abcelmnostu") + ["st", "me", "men"]
    assert merges == [("s", "t"), ("m", "e"), ("me", "n")]
    tok = plain(BPE({**vocab, "<UNK>": len(vocab)}, merges, unk_token="<UNK>"))
    assert tok.tokenize("mean") == ["me", "a", "n"]
    assert tok.tokenize("men") == ["men"]


def test_bear_has_no_be_in_the_lectures_vocabulary():
    """The lecture writes [be, a, <UNK>], but "be" is not in {a, b, c, e, l, m, n, o, s, t, u, st,
    me, men}: no merge ever made it, so b and e stay apart, and r (never seen) is <UNK>."""
    vocab, merges = train_bpe(LECTURE_WORDS, vocab_size=14, min_frequency=1, show_progress=False)
    tok = plain(BPE({**vocab, "<UNK>": len(vocab)}, merges, unk_token="<UNK>"))
    assert "be" not in tok.get_vocab()
    assert tok.tokenize("bear") == ["b", "e", "a", "<UNK>"]
    trained = Tokenizer.train(
        [" ".join([w] * n) for w, n in LECTURE_WORDS.items()],
        model="bpe",
        vocab_size=15,  # [UNK] + the same 14
        min_frequency=1,
        special_tokens=["[UNK]"],
        show_progress=False,
    )
    assert trained.tokenize("bear") == ["b", "e", "a", "[UNK]"]


def test_wordpiece_stem_needs_the_hash_pieces():
    """vocabulary {a, b, c, e, l, m, o, s, t, u, st}: "stem" -> [st, ##e, ##m] once the
    continuation pieces ##e and ##m are in it (a WordPiece vocabulary holds both forms)."""
    letters = list("abcelmostu")
    vocab = {t: i for i, t in enumerate(["[UNK]"] + letters + ["##" + c for c in letters] + ["st"])}
    assert plain(WordPiece(vocab)).tokenize("stem") == ["st", "##e", "##m"]


def test_we_enjoyed_the_game_turn_the_radio_on(bert_tok):
    enc = bert_tok.encode("We enjoyed the game", "Turn the radio on")
    assert enc.tokens == ["[CLS]", "we", "enjoyed", "the", "game", "[SEP]", "turn", "the", "radio", "on", "[SEP]"]
    assert enc.type_ids == [0] * 6 + [1] * 5


def test_paris_sentence_pair_segments(bert_tok):
    enc = bert_tok.encode("Paris is a beautiful city", "I love Paris")
    assert enc.tokens == ["[CLS]", "paris", "is", "a", "beautiful", "city", "[SEP]", "i", "love", "paris", "[SEP]"]
    assert enc.type_ids == [0] * 7 + [1] * 4


def test_nli_premise_and_hypothesis(bert_tok):
    """[CLS] premise [SEP] hypothesis [SEP], segment 0 then 1: the input of the NLI classifier."""
    batch = bert_tok("He is playing", "He is sleeping")
    tokens = bert_tok.convert_ids_to_tokens(batch["input_ids"])
    assert tokens == ["[CLS]", "he", "is", "playing", "[SEP]", "he", "is", "sleeping", "[SEP]"]
    assert batch["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_chinese_characters_are_bytes_in_byte_level_bpe(small_corpus):
    """你好 -> e4 bd a0 e5 a5 bd: six byte symbols, never [UNK], decoded back exactly."""
    assert "你好".encode() == bytes.fromhex("e4bda0e5a5bd")
    tok = Tokenizer.train(small_corpus[:50], model="bytelevel", vocab_size=300, show_progress=False)
    enc = tok.encode("你好", add_special_tokens=False)
    assert len(enc.ids) == 6 and tok.decode(enc.ids) == "你好"
