"""Model fingerprints for the score cache, from files only (no torch, no model load)."""

from __future__ import annotations

import hashlib
import json
import os

from .base import ModelSpec
from .chat import FORMAT_VERSION

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack")
OUTCOME_ONLY_OPTIONS = ("step_threshold",)
MAX_HASHED_FILE = 64 * 2**20  # config and tokenizer files are small; weights are not read


def local_model_dir(model: str) -> str | None:
    if os.path.isdir(model):
        return model
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model, local_files_only=True)  # the cached snapshot, no network
    except Exception:
        return None


def local_model_fingerprint(spec: ModelSpec, kind: str) -> str | None:
    folder = local_model_dir(spec.model)
    if folder is None:
        return None  # not available locally: loading will say why; nothing to cache against
    digest = hashlib.sha256()
    # the step threshold decides outcomes from scores, never the scores themselves
    options = sorted((k, v) for k, v in spec.options.items() if k not in OUTCOME_ONLY_OPTIONS)
    settings = {
        "kind": kind, "dtype": spec.dtype, "max_length": spec.max_length, "seed": spec.seed,
        "format": FORMAT_VERSION, "options": options,
    }
    if kind == "prm":
        from .prm import PRM_FORMAT_VERSION  # no torch at import

        settings["prm_format"] = PRM_FORMAT_VERSION
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, value in sorted(spec.options.items()):
        if isinstance(value, str) and name != "ref_model" and os.path.isfile(value):
            with open(value, "rb") as fh:  # e.g. a judge template: its text, not its name, decides
                digest.update(name.encode() + b"\0" + hashlib.sha256(fh.read()).digest())
    if kind == "judge":
        from .judge import DEFAULT_TEMPLATE  # a changed default template changes the scores

        digest.update(DEFAULT_TEMPLATE.encode())
    _hash_folder(digest, folder)
    reference = spec.options.get("ref_model")
    if reference:  # a DPO reward depends on the reference model too
        ref_folder = local_model_dir(reference)
        if ref_folder is None:
            return None
        _hash_folder(digest, ref_folder)
    return f"{kind}:{digest.hexdigest()}"


def _hash_folder(digest, folder: str) -> None:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            stat = os.stat(path)
            if name.endswith(WEIGHT_SUFFIXES) or stat.st_size > MAX_HASHED_FILE:
                digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            else:
                with open(path, "rb") as fh:
                    digest.update(f"{rel}\0".encode() + hashlib.sha256(fh.read()).digest())
