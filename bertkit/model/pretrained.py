"""BertPreTrainedModel: what BertModel and every head share -- weight init, loading, saving, uploading.

`from_pretrained(name_or_path)` takes a local folder in Hugging Face's layout, a Google TF release
folder (bert_config.json + bert_model.ckpt.*, converted in memory), or a hub name; the name goes
through bertkit.hub.resolve_folder with `revision`, `token`, `cache_dir`, `local_files_only`.
It checks before it allocates: the config's sizes are bounded (BertConfig), then the weights'
shapes, read from the file headers, are compared with the sizes the config asks for; only then is
the model built and are the weights read.

`save_pretrained` writes config.json + model.safetensors (or pytorch_model.bin), each file atomic
and fsynced; `push_to_hub` saves into a temporary folder and uploads it (bertkit.hub.push_folder).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import torch
from torch import nn

from bertkit.checkpoint.hf import (
    TIED,
    LoadReport,
    Shape,
    compare_shapes,
    load_state_into,
    read_shapes,
    read_state_dict,
    write_weights,
)
from bertkit.errors import BertkitError
from bertkit.hardware import TORCH_DTYPES, normalize_precision, resolve_device
from bertkit.hub import push_folder, resolve_folder
from bertkit.log import get_logger
from bertkit.model.config import BertConfig

if TYPE_CHECKING:
    from bertkit.model.bert import BertModel

logger = get_logger(__name__)

M = TypeVar("M", bound="BertPreTrainedModel")
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.")


def torch_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A torch dtype from float32/bfloat16/float16 (or fp32/bf16/fp16, a torch.dtype); None and "auto" keep float32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return None
    try:
        return TORCH_DTYPES[normalize_precision(dtype)]
    except BertkitError:
        raise BertkitError(
            f"dtype {dtype!r}: use a torch dtype or one of float32, bfloat16, float16 (fp32, bf16, fp16), auto"
        ) from None


class BertPreTrainedModel(nn.Module):
    """Shared by BertModel and every head: weight init, checkpoint loading and saving."""

    base_model_prefix = "bert"

    def __init__(self, config: BertConfig):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise BertkitError(f"{type(self).__name__} needs a BertConfig, got {type(config).__name__}")
        self.config = config
        self.name_or_path: str | None = None
        self.loading_info: LoadReport | None = None

    def post_init(self) -> None:
        base = getattr(self, self.base_model_prefix, None)
        done = set(base.modules()) if isinstance(base, BertPreTrainedModel) else set()  # initialised already
        for module in self.modules():
            if module not in done:
                self._init_weights(module)
        self.tie_weights()

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's init: N(0, 0.02) for weights and embeddings, zero biases, LayerNorm = identity."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def tie_weights(self) -> None:
        """Heads that predict words share the word-embedding matrix (overridden there)."""

    @property
    def base_model(self) -> BertModel:
        return cast("BertModel", getattr(self, self.base_model_prefix, self))

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.word_embeddings

    def gradient_checkpointing_enable(self) -> None:
        self.base_model.encoder.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.base_model.encoder.gradient_checkpointing = False

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        params = {id(p): p for p in self.parameters()}  # tied weights counted once
        if exclude_embeddings:
            for m in self.modules():
                if isinstance(m, nn.Embedding):
                    params.pop(id(m.weight), None)
        return sum(p.numel() for p in params.values())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls: type[M],
        name_or_path: str | os.PathLike,
        config: BertConfig | None = None,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
        dtype: str | torch.dtype | None = None,
        device: str | int | torch.device | None = None,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        verify: bool = True,
        **config_overrides: Any,
    ) -> Any:
        """The model in a folder (Hugging Face or Google TF layout) or a hub repository.

        config_overrides (e.g. num_labels=3) change the config; `dtype` casts the weights
        ("auto" keeps float32); `device` moves them ("auto", "cuda", ...); verify=False skips
        the CRC checks of a TF checkpoint. With output_loading_info=True: (model, LoadReport).
        """
        dtype = config_overrides.pop("torch_dtype", dtype)  # Hugging Face's older spelling
        cast = torch_dtype(dtype)
        folder = resolve_folder(
            name_or_path, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only
        )
        if config is None:
            config = BertConfig.from_pretrained(folder)
        if config_overrides:
            config = config.copy(**config_overrides)
        state = _read_checked(cls, config, folder, verify, ignore_mismatched_sizes)
        model = cls(config)
        report = load_state_into(model, state, ignore_mismatched_sizes=ignore_mismatched_sizes)
        del state
        text = report.summary(cls.__name__)
        if text:
            logger.warning(text)
        model.name_or_path = str(folder)
        model.loading_info = report
        if cast is not None:
            model.to(cast)
        if device is not None:
            model.to(resolve_device(device))
        model.eval()  # as in Hugging Face: loaded models start in inference mode; call .train() to fine-tune
        return (model, report) if output_loading_info else model

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, folder: str | os.PathLike, safe_serialization: bool = True) -> Path:
        """config.json + model.safetensors in Hugging Face's layout, each file replaced atomically.

        safe_serialization=False writes pytorch_model.bin (a torch.save of the tensors) instead.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # clone: the fused qkv splits into views of one storage, which safetensors refuses to share
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in self.state_dict().items() if k not in TIED}
        write_weights(tensors, folder, safe_serialization=safe_serialization)
        self.config.save_pretrained(folder, architectures=[type(self).__name__])
        return folder

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | bool | None = None,
        private: bool | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
        safe_serialization: bool = True,
    ) -> str:
        """save_pretrained into a temporary folder, then upload it to the hub repository `repo_id`; its URL."""
        with tempfile.TemporaryDirectory(prefix="bertkit-push-") as tmp:
            self.save_pretrained(tmp, safe_serialization=safe_serialization)
            return push_folder(
                tmp, repo_id, token=token, private=private, revision=revision, commit_message=commit_message
            )


def size_shapes(config: BertConfig) -> dict[str, Shape]:
    """The weights whose shapes fix how much memory the network takes, under BertModel's names."""
    H = config.hidden_size
    shapes: dict[str, Shape] = {
        "embeddings.word_embeddings.weight": (config.vocab_size, H),
        "embeddings.position_embeddings.weight": (config.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, H),
    }
    for i in range(config.num_hidden_layers):
        shapes[f"encoder.layer.{i}.intermediate.dense.weight"] = (config.intermediate_size, H)
    return shapes


def check_sizes(config: BertConfig, shapes: dict[str, Shape], prefix: str, ignore_mismatched_sizes: bool) -> None:
    """Compare the sizes `config` asks for with a checkpoint's shapes, before the model is built.

    A config that disagrees with its weights (a damaged vocab_size of 3,000,000, 500 layers over a
    12-layer checkpoint) is refused here, not after gigabytes were allocated for it. The full,
    per-weight comparison follows in load_state_into.
    """
    bare = {(k[len(prefix) + 1 :] if k.startswith(prefix + ".") else k): v for k, v in shapes.items()}
    compare_shapes(bare, size_shapes(config), ignore_mismatched_sizes)
    layers = {int(m.group(1)) for m in map(_LAYER.match, bare) if m}
    if layers and config.num_hidden_layers > max(layers) + 1 and not ignore_mismatched_sizes:
        raise BertkitError(
            f"the config asks for {config.num_hidden_layers} encoder layers, the checkpoint has {max(layers) + 1}: "
            f"set num_hidden_layers={max(layers) + 1}, or pass ignore_mismatched_sizes=True to add new layers"
        )


def _read_checked(
    cls: type[BertPreTrainedModel], config: BertConfig, folder: Path, verify: bool, ignore_mismatched_sizes: bool
) -> dict[str, torch.Tensor]:
    """The folder's weights, after their shapes were compared with the sizes `config` asks for.

    Shapes come from the file headers where the format has them (safetensors, TF index), so the
    check costs no tensor read; a pickle is loaded first (it is no larger than its file).
    """
    shapes = read_shapes(folder, verify=verify)
    state = None
    if shapes is None:
        state = read_state_dict(folder, verify=verify)
        shapes = {k: tuple(v.shape) for k, v in state.items()}
    check_sizes(config, shapes, cls.base_model_prefix, ignore_mismatched_sizes)
    return state if state is not None else read_state_dict(folder, verify=verify)
