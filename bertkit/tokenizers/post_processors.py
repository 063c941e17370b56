"""Post-processors: add BERT's special tokens and segment ids around one or two sequences.

    single: [CLS] A [SEP]              type ids 0 ... 0
    pair:   [CLS] A [SEP] B [SEP]      type ids 0 ... 0 1 ... 1   (the lecture's segment table)

`TemplateProcessing` is Hugging Face's general form of this (any special tokens, any type ids);
BERT's is one instance of it.
"""

from __future__ import annotations

from bertkit.errors import BertkitError
from bertkit.tokenizers.encoding import Encoding, merge
from bertkit.tokenizers.models import check_density

# a template piece: ("A" | "B", type_id) for a sequence, or (special token name, type_id)
Piece = tuple[str, int]


class TemplateProcessing:
    def __init__(self, single: list[Piece], pair: list[Piece], special_tokens: dict[str, list[int]]) -> None:
        for name, _ in single + pair:
            if name not in ("A", "B") and name not in special_tokens:
                raise BertkitError(f"post-processor template uses {name!r}, which has no id; add it to special_tokens")
        self.single = list(single)
        self.pair = list(pair)
        self.special_tokens = {k: list(v) for k, v in special_tokens.items()}
        # the template as prefix / between / suffix id lists, for the tokenizer's fast path
        self.simple = self._split_simple()

    @classmethod
    def bert(cls, cls_token: str, cls_id: int, sep_token: str, sep_id: int) -> TemplateProcessing:
        return cls(
            single=[(cls_token, 0), ("A", 0), (sep_token, 0)],
            pair=[(cls_token, 0), ("A", 0), (sep_token, 0), ("B", 1), (sep_token, 1)],
            special_tokens={cls_token: [cls_id], sep_token: [sep_id]},
        )

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        template = self.pair if is_pair else self.single
        return sum(len(self.special_tokens[name]) for name, _ in template if name not in ("A", "B"))

    def process(self, first: Encoding, second: Encoding | None, add_special_tokens: bool = True) -> Encoding:
        template = self.pair if second is not None else self.single
        parts: list[Encoding] = []
        for name, type_id in template:
            if name in ("A", "B"):
                seq_id = 0 if name == "A" else 1
                enc = first if seq_id == 0 else second
                if enc is None:
                    continue
                for window in [enc] + enc.overflowing:
                    window.type_ids = [type_id] * len(window.ids)
                    window.sequence_ranges = {seq_id: (0, len(window.ids))}
                parts.append(enc)
            elif add_special_tokens:
                ids = self.special_tokens[name]
                k = len(ids)
                parts.append(Encoding(list(ids), [type_id] * k, [(0, 0)] * k, [None] * k, [1] * k, [1] * k))
        out = merge(parts)
        out._table = first._table
        return out

    def _split_simple(self):
        """(prefix ids, middle ids, suffix ids, type ids) when the templates are specials around A
        (and B), as BERT's are; None for anything fancier."""

        def layout(template, seqs):
            chunks, types, order = [[]], [], []
            for name, type_id in template:
                if name in ("A", "B"):
                    order.append(name)
                    types.append(type_id)
                    chunks.append([])
                else:
                    chunks[-1].extend((i, type_id) for i in self.special_tokens[name])
            return (order == seqs), chunks, types

        ok1, single_chunks, single_types = layout(self.single, ["A"])
        ok2, pair_chunks, pair_types = layout(self.pair, ["A", "B"])
        if not (ok1 and ok2):
            return None
        return {"single": (single_chunks, single_types), "pair": (pair_chunks, pair_types)}

    def to_json(self) -> dict:
        def piece(name: str, type_id: int) -> dict:
            if name in ("A", "B"):
                return {"Sequence": {"id": name, "type_id": type_id}}
            return {"SpecialToken": {"id": name, "type_id": type_id}}

        return {
            "type": "TemplateProcessing",
            "single": [piece(*p) for p in self.single],
            "pair": [piece(*p) for p in self.pair],
            "special_tokens": {
                name: {"id": name, "ids": ids, "tokens": [name] * len(ids)} for name, ids in self.special_tokens.items()
            },
        }


class ByteLevelOffsets:
    """Hugging Face's ByteLevel post-processor: no special tokens, offsets trimmed of the spaces
    ("Ġ") a byte-level token carries, so " world" points at "world"."""

    def __init__(
        self, trim_offsets: bool = True, add_prefix_space: bool = True, template: TemplateProcessing | None = None
    ) -> None:
        self.trim_offsets = trim_offsets
        self.add_prefix_space = add_prefix_space
        self.template = template
        self.simple = None

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        return self.template.num_special_tokens_to_add(is_pair) if self.template else 0

    def process(self, first: Encoding, second: Encoding | None, add_special_tokens: bool = True) -> Encoding:
        if self.trim_offsets:
            for enc in [first] + ([second] if second is not None else []):
                for window in [enc] + enc.overflowing:
                    trim_byte_offsets(window, self.add_prefix_space)
        if self.template is not None:
            return self.template.process(first, second, add_special_tokens)
        for seq_id, enc in enumerate([first] + ([second] if second is not None else [])):
            for window in [enc] + enc.overflowing:
                window.type_ids = [seq_id] * len(window.ids) if second is not None else window.type_ids
                window.sequence_ranges = {seq_id: (0, len(window.ids))}
        if second is None:
            return first
        out = merge([first, second])
        out._table = first._table
        return out

    def to_json(self) -> dict:
        if self.template is not None:
            raise BertkitError(
                "a RobertaProcessing post-processor cannot be written back; save with a TemplateProcessing"
            )
        return {
            "type": "ByteLevel",
            "add_prefix_space": self.add_prefix_space,
            "trim_offsets": self.trim_offsets,
            "use_regex": True,
        }


def trim_byte_offsets(enc: Encoding, add_prefix_space: bool) -> None:
    space = "\u0120"
    offsets = list(enc.offsets)
    for i, token in enumerate(enc.tokens):
        lead = len(token) - len(token.lstrip(space))
        trail = len(token) - len(token.rstrip(space))
        if not lead and not trail:
            continue
        start, end = offsets[i]
        if lead:
            if (i == 0 or start == 0) and add_prefix_space and lead == 1:
                lead = 0
            start = min(start + lead, end)
        if trail and end >= trail:
            end = max(end - trail, start)
        offsets[i] = (start, end)
    enc.offsets = offsets


def _pair_of(p: dict, key: str) -> tuple[str, int]:
    """BertProcessing's ["[SEP]", 102] form."""
    value = p.get(key)
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and _is_id(value[1])):
        raise BertkitError(f"post_processor.{key} must be [token, id], got {value!r}")
    return value[0], value[1]


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _template(items: object, what: str) -> list[Piece]:
    if not isinstance(items, list):
        raise BertkitError(f"post_processor.{what} must be a list")
    out = []
    for item in items:
        body = item.get("Sequence", item.get("SpecialToken")) if isinstance(item, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise BertkitError(f"post_processor.{what}: {item!r} is not a Sequence or SpecialToken piece")
        type_id = body.get("type_id", 0)
        if not _is_id(type_id):
            raise BertkitError(f"post_processor.{what}: type_id {type_id!r} is not a small whole number")
        out.append((body["id"], type_id))
    return out


def from_json(p: object, token_ids: dict[str, int]) -> TemplateProcessing | ByteLevelOffsets | None:
    """The "post_processor" object of a tokenizer.json; `token_ids` is the whole vocabulary."""
    if p is None:
        return None
    if not isinstance(p, dict):
        raise BertkitError(f"post_processor must be an object or null, got {type(p).__name__}")
    kind = p.get("type")
    if kind == "TemplateProcessing":
        specials = p.get("special_tokens") or {}
        if not isinstance(specials, dict):
            raise BertkitError("post_processor.special_tokens must be an object")
        ids: dict[str, list[int]] = {}
        for name, spec in specials.items():
            if not (isinstance(spec, dict) and isinstance(spec.get("ids"), list) and all(map(_is_id, spec["ids"]))):
                raise BertkitError(f"post_processor.special_tokens[{name!r}] needs a list of ids")
            ids[name] = list(spec["ids"])
        for name, values in ids.items():
            check_density(values, len(token_ids), f"post_processor special token {name!r}")
        return TemplateProcessing(_template(p.get("single"), "single"), _template(p.get("pair"), "pair"), ids)
    if kind in ("BertProcessing", "RobertaProcessing"):
        (sep, sep_id), (cls_, cls_id) = _pair_of(p, "sep"), _pair_of(p, "cls")
        for token, idx in ((sep, sep_id), (cls_, cls_id)):
            if token_ids.get(token) != idx:
                raise BertkitError(f"post_processor uses {token!r} with id {idx}, which the vocabulary does not have")
        if kind == "BertProcessing":
            return TemplateProcessing.bert(cls_, cls_id, sep, sep_id)
        template = TemplateProcessing(
            [(cls_, 0), ("A", 0), (sep, 0)],
            [(cls_, 0), ("A", 0), (sep, 0), (sep, 0), ("B", 0), (sep, 0)],
            {cls_: [cls_id], sep: [sep_id]},
        )
        return ByteLevelOffsets(bool(p.get("trim_offsets", True)), bool(p.get("add_prefix_space", True)), template)
    if kind == "ByteLevel":
        return ByteLevelOffsets(bool(p.get("trim_offsets", True)), bool(p.get("add_prefix_space", True)))
    raise BertkitError(
        f"post_processor type {kind!r} is not supported (supported: "
        "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel)"
    )
