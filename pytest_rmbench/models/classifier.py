"""Transformers sequence-classification reward models (output 0 is the reward)."""

from __future__ import annotations

import inspect
import os
from typing import Sequence

from ..items import ScoreRequest
from .base import ModelLoadError, ModelSpec, Prepared
from .chat import ChatEncoder

DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16"}
# Tokenizers without a real limit report a huge sentinel as model_max_length.
UNBOUNDED = 10**8


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


class ClassifierModel:
    kind = "classifier"

    def __init__(self, spec: ModelSpec):
        import torch
        import transformers

        self.torch = torch
        self.name = spec.model
        # plain strings: TorchVersion cannot cross xdist's channel
        self.versions = {"torch": str(torch.__version__), "transformers": str(transformers.__version__)}
        path = spec.model
        common = {"trust_remote_code": spec.trust_remote_code}
        try:
            config = transformers.AutoConfig.from_pretrained(path, **common)
        except ValueError as exc:
            if "trust_remote_code" in str(exc):
                raise ModelLoadError(
                    f"the model {path!r} asks to run code from its repository; "
                    "pass --rm-trust-remote-code only if you trust that code"
                ) from None
            raise ModelLoadError(hub_failure_message("the model config", path, exc)) from None
        except OSError as exc:
            raise ModelLoadError(hub_failure_message("the model config", path, exc)) from None
        if getattr(config, "auto_map", None) and not spec.trust_remote_code:
            raise ModelLoadError(
                f"the model {path!r} asks to run code from its repository (auto_map in config.json); "
                "pass --rm-trust-remote-code only if you trust that code"
            )
        architectures = getattr(config, "architectures", None) or []
        if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
            raise ModelLoadError(
                f"the model {path!r} is a {', '.join(architectures)}, not a sequence classifier: "
                "a reward model needs a ...ForSequenceClassification head (output 0 is the reward)"
            )
        # several outputs (multi-objective reward models): which one is the reward, or a
        # weighted sum of all of them; checked before any weights load
        import math

        num_labels = int(getattr(config, "num_labels", 1) or 1)
        head, weights = spec.options.get("head"), spec.options.get("head_weights")
        head = None if head is None or str(head).strip() == "" else str(head).strip()
        weights = None if weights is None or str(weights).strip() == "" else str(weights).strip()
        self.head, self.head_weights = 0, None
        if head is not None and weights is not None:
            raise ModelLoadError("--rm-head and --rm-head-weights exclude each other: pick one output, or weight them all")
        if head is not None:
            if not (head.isascii() and head.isdigit()):
                raise ModelLoadError(f"--rm-head must be an output index 0..{num_labels - 1}, got {head!r}")
            self.head = int(head)
            if self.head >= num_labels:
                raise ModelLoadError(
                    f"--rm-head {self.head} is out of range: the model {path!r} has num_labels={num_labels} "
                    f"(outputs 0..{num_labels - 1})"
                )
        if weights is not None:
            try:
                self.head_weights = [float(w) for w in weights.split(",")]
            except ValueError:
                raise ModelLoadError(f"--rm-head-weights must be comma-separated numbers, e.g. 0.5,0,1; got {weights!r}") from None
            if not all(math.isfinite(w) for w in self.head_weights):
                raise ModelLoadError(f"--rm-head-weights must be finite numbers, got {weights!r}")
            if len(self.head_weights) != num_labels:
                raise ModelLoadError(
                    f"--rm-head-weights gives {len(self.head_weights)} weight(s), but the model {path!r} has "
                    f"num_labels={num_labels}: give one weight per output"
                )
        self.dtype = self._dtype_name(spec.dtype, config)
        self.device = spec.device or ("cuda" if torch.cuda.is_available() else "cpu")
        share_cpu_threads(torch, self.device)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, **common)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(hub_failure_message("the tokenizer", path, exc)) from None
        load = dict(common, **{dtype_keyword(transformers): getattr(torch, self.dtype)})
        if not spec.allow_pickle:
            load["use_safetensors"] = True
        sharded = spec.gpus > 1 and self.device.startswith("cuda")
        if sharded:
            # a model too large for one GPU: spread its layers over this worker's GPUs
            try:
                import accelerate  # noqa: F401
            except ImportError:
                raise ModelLoadError(
                    "--rm-gpus-per-worker above 1 shards the model with device_map='auto', which needs "
                    "accelerate: pip install 'pytest-rmbench[multi-gpu]'"
                ) from None
            load["device_map"] = "auto"
        try:
            model = self._load_model(transformers, path, load)
        except (OSError, ValueError, EnvironmentError) as exc:
            message = str(exc)
            if not spec.allow_pickle and os.path.isdir(path) and not any(f.endswith(".safetensors") for f in os.listdir(path)):
                raise ModelLoadError(
                    f"the model folder {path!r} holds no .safetensors weights; pickle weights (.bin) "
                    "run code when loaded, so they are refused unless you pass --rm-allow-pickle "
                    "(they are then loaded with weights_only=True)"
                ) from None
            raise ModelLoadError(hub_failure_message("the model weights", path, exc) if message else repr(exc)) from None
        self.model = (model if sharded else model.to(self.device)).eval()
        if sharded:
            self.device = str(next(self.model.parameters()).device)  # where inputs go
        self._setup_padding(spec)
        self.encoder = ChatEncoder(self.tokenizer, self._max_length(spec.max_length, config))
        self._accepts_position_ids = "position_ids" in inspect.signature(self.model.forward).parameters

    @staticmethod
    def _load_model(transformers, path, load):
        cls = transformers.AutoModelForSequenceClassification
        try:
            return cls.from_pretrained(path, attn_implementation="sdpa", **load)
        except (ValueError, ImportError) as exc:
            if "sdpa" not in str(exc).lower() and "attn_implementation" not in str(exc):
                raise
            return cls.from_pretrained(path, **load)

    def _dtype_name(self, requested: str | None, config) -> str:
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

    def _setup_padding(self, spec: ModelSpec) -> None:
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token or tok.unk_token
        if "padding_side" in spec.options:
            tok.padding_side = spec.options["padding_side"]
        # Decoder sequence classifiers find each row's last real token by the CONFIG's pad id,
        # whatever the attention mask says: batches must be padded with that id, or a
        # right-padded row is scored at a pad token. The tokenizer's pad id is used only
        # when the config has none (or an id outside the vocabulary), and is then set there.
        configured = getattr(self.model.config, "pad_token_id", None)
        if isinstance(configured, int) and 0 <= configured < self._vocab_size():
            self.pad_id = configured
            return
        if tok.pad_token_id is None:
            raise ModelLoadError(f"the tokenizer of {self.name!r} has no pad, eos or unk token to pad batches with")
        self.pad_id = tok.pad_token_id
        self.model.config.pad_token_id = self.pad_id

    def _vocab_size(self) -> int:
        try:
            return int(self.model.get_input_embeddings().num_embeddings)
        except Exception:  # no embedding module to ask: trust the config
            return int(getattr(self.model.config, "vocab_size", 0) or 0)

    def _max_length(self, requested: int | None, config) -> int | None:
        limits = [n for n in (getattr(self.tokenizer, "model_max_length", None), getattr(config, "max_position_embeddings", None)) if isinstance(n, int) and 0 < n < UNBOUNDED]
        if requested:
            return min([requested] + limits)
        return min(limits) if limits else None

    def prepare(self, requests: Sequence[ScoreRequest]) -> list[Prepared]:
        encoded = self.encoder.encode_many([r.messages() for r in requests])
        return [Prepared(r, len(ids), truncated, ids) for r, (ids, truncated) in zip(requests, encoded)]

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        torch = self.torch
        width = max(p.length for p in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        left = self.tokenizer.padding_side == "left"
        for row, p in enumerate(batch):
            ids = torch.tensor(p.payload, dtype=torch.long)
            span = slice(width - p.length, width) if left else slice(0, p.length)
            input_ids[row, span] = ids
            attention[row, span] = 1
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention.to(self.device)}
        if self._accepts_position_ids:
            # positions count real tokens only, so left padding does not shift them
            inputs["position_ids"] = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        if logits.ndim != 2 or logits.shape[0] != len(batch):
            raise ValueError(f"expected logits of shape ({len(batch)}, num_labels), got {tuple(logits.shape)}")
        head_weights, head = getattr(self, "head_weights", None), getattr(self, "head", 0)
        if head_weights is not None:
            if logits.shape[1] != len(head_weights):
                raise ValueError(f"--rm-head-weights has {len(head_weights)} weights for {logits.shape[1]} outputs")
            weights = torch.tensor(head_weights, dtype=torch.float32, device=logits.device)
            return (logits.float() @ weights).cpu().tolist()
        if head >= logits.shape[1]:
            raise ValueError(f"--rm-head {head} is out of range for {logits.shape[1]} outputs")
        return logits[:, head].float().cpu().tolist()


def build(spec: ModelSpec) -> ClassifierModel:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(f"a transformers model needs torch and transformers installed: {exc}") from None
    return ClassifierModel(spec)
