"""Vision-language reward models (`--rm-kind vision`, detected by `--rm-kind auto`).

Two heads, one kind:

- a Qwen2-VL / Qwen2.5-VL backbone (any model AutoModel loads) with a value head in trl's
  layout: `value_head.safetensors` beside the weights, keys `v_head.summary.weight` (1 x hidden)
  and `v_head.summary.bias`, as trl's AutoModelForCausalLMWithValueHead saves them (the
  Skywork-VL-Reward layout). The reward is the value of the last hidden state at the last
  non-pad token: summary(h), computed in float32. Only the backbone is loaded (AutoModel): no
  language-model head, so a 7B model costs no vocabulary projection;
- any `...ForSequenceClassification` model with a `vision_config` that transformers loads
  (output 0 is the reward, as for the classifier kind).

Inputs (`VisionInputs`, shared with the VL judge): the request's messages go through the chat
template with the images as `{"type": "image"}` parts (items.images.template_messages): an
image from a message's content parts where it sat, the `images` field's at the start of the
last user message (as the http kind sends them); a text-only request is plain text messages.
Nothing is
decoded at collection. For Qwen2-VL-family models `prepare` reads each distinct image's size
from its header (bytes checked against the collected sha256), counts its tokens as the image
processor does (get_number_of_image_patches / merge_size^2), repeats the image placeholder
token that many times, as Qwen2VLProcessor does, and tokenizes; the pixels (decoding with
items/images.decode, Pillow's bomb guard on, then the image processor) are made in `prepare`
on the CPU, and, when the model is on a GPU, in one background thread, longest sequences
first, while the model scores the batches before (a batch waits only for its own images; on
2 shared CPUs the thread competed with the model: 0.85x to 1.09x, bench/results/vl-scale-*.json).
Each distinct image of a call is decoded once (a pair's two answers share it). No torchvision is needed (Qwen2VLProcessor's video part asks for it).
Other models go through their AutoProcessor per request, in `prepare`. A bad image errors
its item only, naming the image: one whose header cannot be read raises in `prepare` (the
engine then prepares the chunk's requests one by one), one that fails to decode later fails
its batch (the engine then scores that batch one by one). A sequence over the length limit
(the smallest of --rm-max-length, the tokenizer's and the text model's) is that item's error:
image tokens cannot be cut.

Batches pad per batch (on the tokenizer's side; ModelSpec.options["padding_side"] overrides it) and the pixel
tensors of a batch are concatenated in row order; positions are the model's own (Qwen2-VL's
multimodal rope reads the attention mask), and the value is read at each row's last real
token, so scores do not depend on batch size or padding side.

Remote code (e.g. InternLM-XComposer2.5-Reward): with --rm-trust-remote-code, a model whose
class has `get_score(chat, images, hd_num=...)` is scored one request at a time through it
(images passed as file paths; data URIs written to a private temporary folder).
"""

from __future__ import annotations

import inspect
import io
import json
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

from ..items.images import ImageError, decode, pillow, read_bytes, template_messages
from .base import ModelLoadError, ModelSpec, Prepared
from .loading import TransformersAdapter, load_config, max_length, pad_rows, position_ids

VALUE_HEAD_FILE = "value_head.safetensors"
VALUE_HEAD_KEYS = (("v_head.summary.weight", "v_head.summary.bias"), ("summary.weight", "summary.bias"))
EXPANDED_TYPES = ("qwen2_vl", "qwen2_5_vl")  # image placeholder repeated per merged patch, as their processor does
IMAGE_TOKEN = "<|image_pad|>"
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")  # one value per token: padded
HD_NUM = 9  # InternLM-XComposer2.5-Reward's hd_num, as its README calls get_score


# -- what a folder holds (no torch) --------------------------------------------------------------


def read_config(folder: str | None) -> dict:
    """config.json of a local folder as a dict ({} when absent or unreadable)."""
    if not folder:
        return {}
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
        return config if isinstance(config, dict) else {}
    except (OSError, ValueError):
        return {}


def is_vision_language(config: dict) -> bool:
    """A config that holds a vision tower's config (Qwen2-VL, LLaVA, Gemma 3, ...)."""
    return isinstance(config.get("vision_config"), dict)


def has_value_head(folder: str | None) -> bool:
    return bool(folder) and os.path.isfile(os.path.join(folder, VALUE_HEAD_FILE))


def local_folder(model: str) -> str | None:
    from .fingerprint import local_model_dir

    return local_model_dir(model)


# -- inputs: chat template, images, token ids ----------------------------------------------------


def read_chat_template(folder: str | None) -> str | None:
    """The processor's chat template saved beside the model (chat_template.jinja or .json)."""
    if not folder:
        return None
    for name in ("chat_template.jinja", "chat_template.json"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            return json.loads(text).get("chat_template") if name.endswith(".json") else text
    return None


class VisionInputs:
    """Token ids and pixel tensors of requests for one VL model (see the module doc).

    `encode(conversations, images, generation_prompt)` -> one payload per request:
    {"ids": [...], "images": [per-image tensor dicts, or futures of them from the image thread],
    "extra": {token-level lists}};
    `collate(torch, payloads, left, pad_id)` -> (model inputs, each row's last real position).
    """

    def __init__(self, transformers, spec: ModelSpec, path: str, config, what: str = "the model"):
        self.folder = local_folder(path)
        self.config = config
        self.tokenizer = self._load(transformers.AutoTokenizer, spec, path, "tokenizer")
        if "padding_side" in spec.options:
            self.tokenizer.padding_side = spec.options["padding_side"]
        self.processor = self.image_processor = None
        if getattr(config, "model_type", "") in EXPANDED_TYPES:
            self.image_processor = self._load(transformers.AutoImageProcessor, spec, path, "image processor")
        self.expanded = hasattr(self.image_processor, "merge_size") and hasattr(self.image_processor, "get_number_of_image_patches")
        # decode and preprocess images in a background thread while the model runs: set by the adapter, on
        # where the model is not on the CPU (there the thread competes with the model for the same cores and
        # the GIL: bench/vl_scale.py measured 0.85x to 1.09x on 2 shared CPUs)
        self.overlap = False
        self._executor = None
        if not self.expanded:
            self.processor = self._load(transformers.AutoProcessor, spec, path, "processor")
        self.template = (getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)
                         or read_chat_template(self.folder))
        if not self.template:
            raise ModelLoadError(f"{what} {path!r} has no chat template (tokenizer, processor or chat_template.jinja) "
                                 "to put images and text together")
        if self.expanded:
            self.image_token = getattr(self.tokenizer, "image_token", None) or IMAGE_TOKEN
            token_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
            if token_id != getattr(config, "image_token_id", token_id):
                raise ModelLoadError(f"the tokenizer of {path!r} maps {self.image_token} to {token_id}, "
                                     f"the model's image_token_id is {config.image_token_id}")

    @staticmethod
    def _load(auto, spec: ModelSpec, path: str, what: str):
        from .loading import hub_failure_message

        try:
            return auto.from_pretrained(path, trust_remote_code=spec.trust_remote_code)
        except (OSError, ValueError, ImportError, TypeError, AttributeError) as exc:
            raise ModelLoadError(hub_failure_message(f"the {what}", path, exc)) from None

    def render(self, messages: list[dict], generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, chat_template=self.template, tokenize=False,
                                                  add_generation_prompt=generation_prompt)

    def encode(self, conversations: list[list[dict]], images: list[tuple], generation_prompt: bool = False) -> list[dict]:
        """Payloads for the conversations (text messages) and their images (ImageRefs);
        ImageError names an image that cannot be used."""
        placed = [template_messages(m, refs) for m, refs in zip(conversations, images)]
        texts = [self.render(messages, generation_prompt) for messages, _ in placed]
        images = [tuple(order) for _, order in placed]  # in the order the template shows them
        if self.expanded:
            return self._encode_expanded(texts, images)
        decoded = {}  # each distinct image decoded once per call
        for refs in images:
            for ref in refs:
                if ref not in decoded:
                    decoded[ref] = decode(ref)[0]
        return [self._encode_with_processor(text, [decoded[r] for r in refs]) for text, refs in zip(texts, images)]

    def _encode_expanded(self, texts: list[str], images: list[tuple]) -> list[dict]:
        counts = {}  # image -> its tokens, from its size alone (the header): the pixels come later
        for refs in images:
            for ref in refs:
                if ref not in counts:
                    counts[ref] = self._tokens_of(ref)
        expanded = []
        for text, refs in zip(texts, images):
            pieces = text.split(self.image_token)
            if len(pieces) - 1 != len(refs):
                raise ValueError(f"the chat template wrote {len(pieces) - 1} image tokens for {len(refs)} images")
            expanded.append(pieces[0] + "".join(self.image_token * counts[r] + rest for r, rest in zip(refs, pieces[1:])))
        ids = self.tokenizer(expanded, add_special_tokens=False)["input_ids"] if expanded else []
        image_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        payloads = [{"ids": list(row), "images": list(refs),
                     "extra": {"mm_token_type_ids": [int(t == image_id) for t in row]}}  # 1 marks image tokens (M-RoPE)
                    for row, refs in zip(ids, images)]
        pending = {}  # each distinct image decoded and preprocessed once, shared by the payloads that show it
        for payload in sorted(payloads, key=lambda p: -len(p["ids"])):  # in the order the engine scores: longest first
            for ref in payload["images"]:
                if ref not in pending:
                    pending[ref] = self._pool().submit(self._pixels, ref, counts[ref]) if self.overlap else self._pixels(ref, counts[ref])
        for payload in payloads:
            payload["images"] = [pending[r] for r in payload["images"]]
        return payloads

    def _tokens_of(self, ref) -> int:
        """The image's tokens from its size (read from its header, not decoded), as its processor counts them."""
        data = read_bytes(ref)
        try:
            with pillow().open(io.BytesIO(data)) as image:
                width, height = image.size
        except Exception as exc:
            raise ImageError(f"image {ref.label()}: cannot be decoded ({type(exc).__name__}: {exc})") from None
        return int(self.image_processor.get_number_of_image_patches(height, width)) // int(self.image_processor.merge_size) ** 2

    def _pixels(self, ref, tokens: int) -> dict:
        """The image decoded (Pillow's guards on) and preprocessed: its pixel_values and image_grid_thw."""
        out = self.image_processor(images=[decode(ref)[0]], return_tensors="pt")
        found = int(out["image_grid_thw"].prod()) // int(self.image_processor.merge_size) ** 2
        if found != tokens:
            raise ValueError(f"image {ref.label()}: {found} image tokens after preprocessing, {tokens} expected from its size")
        return {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}

    def _pool(self):
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rmbench-images")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _encode_with_processor(self, text: str, images: list) -> dict:
        out = self.processor(text=[text], images=images or None, return_tensors="pt", add_special_tokens=False)
        extra = {k: v[0].tolist() for k, v in out.items() if k in TOKEN_KEYS and k not in ("input_ids", "attention_mask")}
        tensors = {k: v for k, v in out.items() if k not in TOKEN_KEYS}
        return {"ids": out["input_ids"][0].tolist(), "images": [tensors] if tensors else [], "extra": extra}

    def collate(self, torch, payloads: Sequence[dict], left: bool, pad_id: int, device,
                accepts=None) -> tuple[dict, list[int]]:
        """`accepts`: the model's forward parameters; token-level extras it does not take are left out."""
        input_ids, attention, offsets = pad_rows(torch, [p["ids"] for p in payloads], pad_id, left)
        inputs = {"input_ids": input_ids, "attention_mask": attention}
        for key in sorted({k for p in payloads for k in p["extra"]} & set(accepts or ())):
            inputs[key] = pad_rows(torch, [p["extra"].get(key) or [0] * len(p["ids"]) for p in payloads], 0, left)[0]
        parts = [image.result() if isinstance(image, Future) else image for p in payloads for image in p["images"]]
        for key in sorted({k for image in parts for k in image}):
            inputs[key] = torch.cat([image[key] for image in parts if key in image], dim=0)
        last = [offset + len(p["ids"]) - 1 for p, offset in zip(payloads, offsets)]
        return {k: v.to(device) for k, v in inputs.items()}, last


def pad_token_id(tokenizer, config) -> int:
    """The id batches are padded with: the model's configured pad id, else the tokenizer's (set on
    the config, where a sequence classifier looks for it), else its eos."""
    text_config = getattr(config, "text_config", None)
    for source in (config, text_config):
        value = getattr(source, "pad_token_id", None)
        if isinstance(value, int) and value >= 0:
            return value
    value = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if value is None:
        raise ModelLoadError("the tokenizer has no pad or eos token to pad batches with")
    for source in (config, text_config):
        if source is not None:
            source.pad_token_id = value
    return value


def text_config(config):
    return getattr(config, "text_config", None) or config


def check_length(prepared: list[Prepared], limit: int | None) -> None:
    """ValueError for the first sequence over the limit (the engine then errors that item alone)."""
    for p in prepared:
        if limit is not None and p.length > limit:
            raise ValueError(f"the sequence with its image tokens is {p.length} tokens, over the limit of {limit} "
                             "(the smallest of --rm-max-length, the tokenizer's and the model's; image tokens are not cut)")


# -- the adapter -----------------------------------------------------------------------------------


def read_value_head(torch, folder: str | None, hidden: int, path: str):
    """(weight 1 x hidden, bias 1) in float32 from value_head.safetensors; ModelLoadError naming what is wrong."""
    from safetensors.torch import load_file

    file = os.path.join(folder or "", VALUE_HEAD_FILE)
    try:
        tensors = load_file(file)
    except Exception as exc:
        raise ModelLoadError(f"could not read the value head {file!r}: {type(exc).__name__}: {exc}") from None
    for weight_key, bias_key in VALUE_HEAD_KEYS:
        if weight_key in tensors:
            weight = tensors[weight_key].float().reshape(-1, tensors[weight_key].shape[-1])
            bias = tensors.get(bias_key, torch.zeros(1)).float().reshape(-1)
            if weight.shape != (1, hidden) or bias.shape != (1,):
                raise ModelLoadError(f"the value head of {path!r} has a weight of shape {tuple(weight.shape)} and a bias "
                                     f"of {tuple(bias.shape)}; the model's hidden size {hidden} needs (1, {hidden}) and (1,)")
            return weight, bias
    raise ModelLoadError(f"{file!r} has no v_head.summary.weight (trl's value head layout); it holds {sorted(tensors)[:5]}")


def close_with_inputs(adapter) -> None:
    """A VL adapter's close: stops its image thread (VisionInputs) and lets the weights go (and
    the GPU memory they hold)."""
    if getattr(adapter, "inputs", None) is not None:
        adapter.inputs.close()
    TransformersAdapter.close(adapter)


class VisionRewardModel(TransformersAdapter):
    """A VL reward model: a backbone with a trl value head, or a VL sequence classifier."""

    kind = "vision"
    name: str
    dtype: str
    device: str
    pairwise = False  # one score per (images, prompt, answer)
    steps = False
    images = True  # sees the images of a request
    versions: dict  # torch, transformers: set when loaded

    def close(self) -> None:
        close_with_inputs(self)

    def __init__(self, spec: ModelSpec):
        torch, transformers = self._start(spec)
        path = spec.model
        folder = local_folder(path)
        config = load_config(
            transformers, spec, path, accepts=("ForConditionalGeneration", "ForSequenceClassification", "Model", "ForCausalLM"),
            refusal="a vision-language reward model (a backbone with value_head.safetensors, or a ...ForSequenceClassification)",
        )
        self.head = "value" if has_value_head(folder) else "classifier"
        architectures = getattr(config, "architectures", None) or []
        if self.head == "classifier" and not any(a.endswith("ForSequenceClassification") for a in architectures):
            raise ModelLoadError(
                f"{path!r} is a {', '.join(architectures) or 'model'} without a reward head: a vision-language reward model "
                f"needs {VALUE_HEAD_FILE} (trl's value head) or a ...ForSequenceClassification head; "
                "a generative model can judge pairs with --rm-kind judge")
        self.dtype, self.device = _dtype_device(torch, spec, config)
        self.inputs = VisionInputs(transformers, spec, path, config)
        self.inputs.overlap = not str(self.device).startswith("cpu")
        self.tokenizer = self.inputs.tokenizer
        if self.head == "value":
            hidden = int(getattr(text_config(config), "hidden_size"))
            self.v_weight, self.v_bias = read_value_head(torch, folder, hidden, path)
            self._load_model(transformers, spec, path, transformers.AutoModel, must_be="a vision-language backbone")
            self.v_weight, self.v_bias = self.v_weight.to(self.device), self.v_bias.to(self.device)
        else:
            self._load_model(transformers, spec, path, transformers.AutoModelForSequenceClassification,
                             must_be="a vision-language sequence classifier")
        self.pad_id = pad_token_id(self.tokenizer, self.model.config)
        self.limit = max_length(self.tokenizer, spec.max_length, text_config(config))
        self._parameters = set(inspect.signature(self.model.forward).parameters)
        # Qwen2-VL's multimodal rope makes its own positions from the attention mask; others get real-token positions
        self._positions = not self.inputs.expanded and "position_ids" in self._parameters

    def prepare(self, requests: Sequence) -> list[Prepared]:
        payloads = self.inputs.encode([r.messages() for r in requests], [tuple(getattr(r, "images", ())) for r in requests])
        prepared = [Prepared(r, len(p["ids"]), False, p) for r, p in zip(requests, payloads)]
        check_length(prepared, self.limit)
        return prepared

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        torch = self.torch
        left = self.tokenizer.padding_side == "left"
        inputs, last = self.inputs.collate(torch, [p.payload for p in batch], left, self.pad_id, self.device, self._parameters)
        if "use_cache" in self._parameters:
            inputs["use_cache"] = False
        if self._positions:  # positions count real tokens only, so left padding does not shift them
            inputs["position_ids"] = position_ids(inputs["attention_mask"])
        with torch.inference_mode():
            out = self.model(**inputs)
        if self.head == "classifier":
            return out.logits[:, 0].float().cpu().tolist()
        hidden = out.last_hidden_state[torch.arange(len(batch), device=out.last_hidden_state.device), torch.tensor(last)]
        return (hidden.float() @ self.v_weight.T + self.v_bias)[:, 0].cpu().tolist()


def _dtype_device(torch, spec: ModelSpec, config) -> tuple[str, str]:
    from .loading import default_device, dtype_name, share_cpu_threads

    device = default_device(torch, spec)
    share_cpu_threads(torch, device)
    return dtype_name(spec.dtype, config), device


# -- remote code: a model with get_score (InternLM-XComposer2.5-Reward) ------------------------------


class RemoteScoreModel(TransformersAdapter):
    """A model whose repository code scores (chat, image paths) with get_score; one request at a time."""

    kind = "vision"
    name: str
    dtype: str
    device: str
    pairwise = False
    steps = False
    images = True
    versions: dict

    def __init__(self, spec: ModelSpec):
        torch, transformers = self._start(spec)
        config = load_config(transformers, spec, spec.model, accepts=("",), refusal="")
        self.dtype, self.device = _dtype_device(torch, spec, config)
        self.tokenizer = VisionInputs._load(transformers.AutoTokenizer, spec, spec.model, "tokenizer")
        self._load_model(transformers, spec, spec.model, transformers.AutoModel)
        if not callable(getattr(self.model, "get_score", None)):
            raise ModelLoadError(f"the repository code of {spec.model!r} has no get_score(chat, images) to score with")
        self.model.tokenizer = self.tokenizer  # as IXC-2.5-Reward's README sets it
        self._files = tempfile.TemporaryDirectory(prefix="rmbench-images-")

    def prepare(self, requests: Sequence) -> list[Prepared]:
        out = []
        for request in requests:
            paths = [self._path_of(ref) for ref in getattr(request, "images", ())]
            out.append(Prepared(request, sum(len(m["content"]) for m in request.messages()), False, paths))
        return out

    def _path_of(self, ref) -> str:
        image, data = decode(ref)  # a bad image errors its item here, named
        if ref.kind == "path" and ref.path:
            return ref.path
        path = os.path.join(self._files.name, f"{ref.sha256}.{(image.format or 'png').lower()}")
        if not os.path.exists(path):
            with open(path, "wb") as fh:
                fh.write(data)
        return path

    def score_batch(self, batch: Sequence[Prepared]) -> list[float]:
        scores = []
        with self.torch.inference_mode():
            for p in batch:
                score = self.model.get_score(p.request.messages(), p.payload, hd_num=HD_NUM)
                scores.append(float(score.item() if hasattr(score, "item") else score))
        return scores

    def close(self) -> None:
        TransformersAdapter.close(self)
        self._files.cleanup()


def build(spec: ModelSpec):
    """The VL reward adapter: repository code with get_score only with --rm-trust-remote-code."""
    from .loading import require_transformers

    require_transformers()
    folder = local_folder(spec.model)
    config = read_config(folder)
    heads = has_value_head(folder) or any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or ())
    if config.get("auto_map") and spec.trust_remote_code and not heads:
        return RemoteScoreModel(spec)
    return VisionRewardModel(spec)


__all__ = ["VisionInputs", "VisionRewardModel", "RemoteScoreModel", "ImageError", "build"]
