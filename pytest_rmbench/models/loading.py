"""Loading a transformers model (a local folder or a Hub id): the steps the classifier, judge,
dpo and prm adapters share, each with the clear ModelLoadError that says what to do, and
`TransformersAdapter`, the frame of those adapters.

Every function takes the imported `transformers` / `torch` modules, so importing this module
does not import them. `what` names the model in messages: "the model" for an adapter of one
model, or e.g. "the policy model" / "the reference model (--rm-ref-model)" (see `part_of`).
"""

from __future__ import annotations

import importlib
import os

from ..requires import require
from .base import ModelLoadError, ModelSpec
from .device import free_accelerator_memory

DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16"}
# Tokenizers without a real limit report a huge sentinel as model_max_length.
UNBOUNDED = 10**8
TRUST_HINT = "pass --rm-trust-remote-code only if you trust that code"


def require_transformers() -> None:
    """ModelLoadError (one line naming the `hf` extra) unless torch and transformers can be imported."""
    require("torch", "transformers", what="a transformers model", error=ModelLoadError)


# -- names and messages ----------------------------------------------------------------------------


def looks_local(name: str) -> bool:
    """A path, not a Hub id (those are 'name' or 'org/name')."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def hub_failure_message(what: str, name: str, exc: BaseException) -> str:
    if os.path.isdir(name):
        return f"could not load {what} from the local folder {name!r}: {type(exc).__name__}: {exc}"
    if looks_local(name):
        return f"could not load {what}: there is no folder {name!r}"
    return (
        f"could not load {what} {name!r}: it is not a local folder, and it is not in the local "
        f"Hugging Face cache while the Hub is unreachable or refused it ({type(exc).__name__}: {exc})"
    )


def part_of(what: str, part: str) -> str:
    """'the model config' for the one model of an adapter, else e.g. 'the config of the policy model'."""
    return f"the model {part}" if what == "the model" else f"the {part} of {what}"


# -- environment -----------------------------------------------------------------------------------


def dtype_keyword(transformers) -> str:
    """from_pretrained's dtype argument: `dtype` since transformers 4.56, `torch_dtype` before
    (older versions do not know `dtype`, and newer ones warn on `torch_dtype`)."""
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__).release >= (4, 56) else "torch_dtype"


def share_cpu_threads(torch, device: str) -> None:
    """xdist workers on the CPU split the cores instead of each taking all of them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if device == "cpu" and workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(max(1, cores // workers))


def library_versions(torch, transformers) -> dict:
    # plain strings: TorchVersion cannot cross xdist's channel
    return {"torch": str(torch.__version__), "transformers": str(transformers.__version__)}


def default_device(torch, spec: ModelSpec) -> str:
    """--rm-device, else the GPU when there is one."""
    return spec.device or ("cuda" if torch.cuda.is_available() else "cpu")


def dtype_name(requested: str | None, config) -> str:
    """--rm-dtype, else the config's dtype, else float32 (as a torch attribute name)."""
    if requested and requested != "auto":
        if requested not in DTYPES:
            raise ModelLoadError(f"unknown --rm-dtype {requested!r}; choose one of float32, bfloat16, float16 (or auto)")
        return DTYPES[requested]
    configured = getattr(config, "dtype", None)
    if configured is None and "torch_dtype" in getattr(config, "__dict__", {}):
        # transformers < 4.56 keeps it as torch_dtype; newer ones warn on that (deprecated) name
        configured = config.torch_dtype
    name = str(configured).replace("torch.", "") if configured is not None else "float32"
    return DTYPES.get(name, "float32")


# -- loading ---------------------------------------------------------------------------------------


def load_config(transformers, spec: ModelSpec, path: str, *, accepts: tuple, refusal: str, what: str = "the model"):
    """The model's config, refusing repository code without --rm-trust-remote-code and any
    architecture whose name ends in none of `accepts` ("... is a X, not <refusal>")."""
    try:
        config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=spec.trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(f"{what} {path!r} asks to run code from its repository; {TRUST_HINT}") from None
        raise ModelLoadError(hub_failure_message(part_of(what, "config"), path, exc)) from None
    except OSError as exc:
        raise ModelLoadError(hub_failure_message(part_of(what, "config"), path, exc)) from None
    if getattr(config, "auto_map", None) and not spec.trust_remote_code:
        raise ModelLoadError(f"{what} {path!r} asks to run code from its repository (auto_map in config.json); {TRUST_HINT}")
    architectures = getattr(config, "architectures", None) or []
    if architectures and not any(a.endswith(tuple(accepts)) for a in architectures):
        raise ModelLoadError(f"{what} {path!r} is a {', '.join(architectures)}, not {refusal}")
    return config


def load_tokenizer(transformers, spec: ModelSpec, path: str):
    try:
        return transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=spec.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(hub_failure_message("the tokenizer", path, exc)) from None


def load_weights(transformers, torch, spec: ModelSpec, path: str, model_class, dtype: str, device: str, *,
                 what: str = "the model", must_be: str | None = None):
    """(model in eval mode, the device its inputs go to), loaded with `model_class` (e.g.
    transformers.AutoModelForSequenceClassification) in `dtype` (a torch attribute name).

    Safetensors only unless --rm-allow-pickle; with spec.gpus > 1 on CUDA the layers are
    spread over the GPUs (device_map="auto", which needs accelerate); SDPA attention where
    the model supports it (measured faster than eager on the CPU in float32 and bfloat16,
    bench/results/length-mix-2cpu.json), or --rm-attn-implementation. With `must_be` (e.g. "a causal language model"), a model that
    model_class cannot load, or that lacks weights it needs (they would be random), is refused.
    """
    load = {"trust_remote_code": spec.trust_remote_code, dtype_keyword(transformers): getattr(torch, dtype)}
    if must_be:
        load["output_loading_info"] = True
    if not spec.allow_pickle:
        load["use_safetensors"] = True
    sharded = spec.gpus > 1 and device.startswith("cuda")
    if sharded:
        # a model too large for one GPU: spread its layers over this worker's GPUs
        try:
            importlib.import_module("accelerate")
        except ImportError:
            raise ModelLoadError(
                "--rm-gpus-per-worker above 1 shards the model with device_map='auto', which needs "
                "accelerate: pip install 'pytest-rmbench[multi-gpu]'"
            ) from None
        load["device_map"] = "auto"
    attention = spec.options.get("attn_implementation")  # --rm-attn-implementation; default SDPA, else the model's own
    try:
        try:
            loaded = model_class.from_pretrained(path, attn_implementation=attention or "sdpa", **load)
        except (ValueError, ImportError) as exc:
            if attention or ("sdpa" not in str(exc).lower() and "attn_implementation" not in str(exc)):
                raise  # an attention kernel the user named and the model lacks: said, not replaced
            loaded = model_class.from_pretrained(path, **load)
    except (OSError, ValueError) as exc:
        if not spec.allow_pickle and os.path.isdir(path) and not any(f.endswith(".safetensors") for f in os.listdir(path)):
            raise ModelLoadError(
                f"{part_of(what, 'folder')} {path!r} holds no .safetensors weights; pickle weights (.bin) "
                "run code when loaded, so they are refused unless you pass --rm-allow-pickle "
                "(they are then loaded with weights_only=True)"
            ) from None
        if must_be and "Unrecognized configuration class" in str(exc):
            raise ModelLoadError(f"{what} {path!r} is not {must_be} that transformers can load: {exc}") from None
        raise ModelLoadError(hub_failure_message(part_of(what, "weights"), path, exc) if str(exc) else repr(exc)) from None
    model = loaded
    if must_be:
        model, info = loaded
        missing = sorted((info or {}).get("missing_keys") or [])
        if missing:
            # e.g. a classifier's folder loaded as a causal LM: the LM head would be random
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise ModelLoadError(f"{what} {path!r} lacks weights that {must_be} needs ({shown}): they would be random")
    if sharded:
        return model.eval(), str(next(model.parameters()).device)
    return model.to(device).eval(), device


# -- after loading ---------------------------------------------------------------------------------


def vocab_size(model) -> int:
    """The size of the model's input vocabulary."""
    try:
        return int(model.get_input_embeddings().num_embeddings)
    except Exception:  # no embedding module to ask: trust the config
        return int(getattr(model.config, "vocab_size", 0) or 0)


def output_vocab_size(model) -> int | None:
    """The rows of the model's output (LM head) embeddings; None when it has none to ask."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    return int(weight.shape[0]) if weight is not None else None


def setup_padding(tokenizer, model, spec: ModelSpec, name: str) -> int:
    """Sets up the tokenizer's padding (pad token; ModelSpec.options["padding_side"], no CLI flag) and returns the id that
    batches are padded with."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if "padding_side" in spec.options:
        tokenizer.padding_side = spec.options["padding_side"]
    # Decoder sequence classifiers find each row's last real token by the CONFIG's pad id,
    # whatever the attention mask says: batches must be padded with that id, or a
    # right-padded row is scored at a pad token. The tokenizer's pad id is used only
    # when the config has none (or an id outside the vocabulary), and is then set there.
    configured = getattr(model.config, "pad_token_id", None)
    if isinstance(configured, int) and 0 <= configured < vocab_size(model):
        return configured
    if tokenizer.pad_token_id is None:
        raise ModelLoadError(f"the tokenizer of {name!r} has no pad, eos or unk token to pad batches with")
    model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer.pad_token_id


def max_length(tokenizer, requested: int | None, config) -> int | None:
    """The smallest of --rm-max-length, the tokenizer's model_max_length and the config's
    max_position_embeddings (None when none of them sets a limit)."""
    limits = [n for n in (getattr(tokenizer, "model_max_length", None), getattr(config, "max_position_embeddings", None)) if isinstance(n, int) and 0 < n < UNBOUNDED]
    if requested:
        return min([requested] + limits)
    return min(limits) if limits else None


def pad_rows(torch, rows, pad_id: int, left: bool):
    """Token id rows -> (input_ids, attention_mask, offsets), padded to the longest row.

    offsets[i] is where row i starts (0 with right padding). One place for the padding
    every transformers kind does, so scores cannot depend on which kind padded them.
    """
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    offsets = []
    for i, ids in enumerate(rows):
        offset = width - len(ids) if left else 0
        input_ids[i, offset : offset + len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        attention[i, offset : offset + len(ids)] = 1
        offsets.append(offset)
    return input_ids, attention, offsets


def position_ids(attention):
    """Positions that count real tokens only, so left padding does not shift them."""
    return (attention.cumsum(-1) - 1).clamp(min=0)


# -- the adapters' shared frame --------------------------------------------------------------------


class TransformersAdapter:
    """What the transformers kinds (classifier, judge, dpo, prm) share: their attributes, the
    first and last steps of loading, close() and build().

    A subclass's __init__ calls `_start`, loads its config, then `_load_tokenizer`,
    `_load_model` and `_setup_padding`, with its own checks in between. Each subclass still
    states the adapter protocol in its own class (kind, name, dtype, device, pairwise, steps,
    versions, close), as tests/test_kinds.py checks.
    """

    @classmethod
    def build(cls, spec: ModelSpec):
        """The adapter, or one ModelLoadError naming the `hf` extra when torch or transformers is missing."""
        require_transformers()
        return cls(spec)

    def _start(self, spec: ModelSpec):
        """Imports torch and transformers (returned) and sets torch, name and versions."""
        import torch
        import transformers

        self.torch = torch
        self.name = spec.model
        self.versions = library_versions(torch, transformers)
        return torch, transformers

    def _load_tokenizer(self, transformers, spec: ModelSpec, path: str, config) -> None:
        """Sets dtype and device (from the options and the config) and the tokenizer."""
        self.dtype = dtype_name(spec.dtype, config)
        self.device = default_device(self.torch, spec)
        share_cpu_threads(self.torch, self.device)
        self.tokenizer = load_tokenizer(transformers, spec, path)

    def _load_model(self, transformers, spec: ModelSpec, path: str, model_class, *, must_be: str | None = None) -> None:
        """Sets model (in eval mode) and the device its inputs go to; see load_weights."""
        self.model, self.device = load_weights(
            transformers, self.torch, spec, path, model_class, self.dtype, self.device, must_be=must_be
        )

    def _setup_padding(self, spec: ModelSpec, config) -> int | None:
        """Sets pad_id (see setup_padding); returns the length limit (see max_length)."""
        self.pad_id = setup_padding(self.tokenizer, self.model, spec, self.name)
        return max_length(self.tokenizer, spec.max_length, config)

    def close(self) -> None:
        """Let the weights go (and the GPU memory they hold): the run is over."""
        self.model = None
        free_accelerator_memory()
