"""Tiny vision-language models built on the spot, with no download, for the VL kinds' tests.

- `build_vl_tokenizer`: a word-level tokenizer trained with `tokenizers` on a few strings,
  wrapped in `PreTrainedTokenizerFast`, with Qwen2-VL's vision special tokens
  (<|vision_start|>, <|image_pad|>, <|vision_end|>, <|video_pad|>), role tokens, a pad token
  and a chat template that takes a message's content as a string or as parts
  ({type: image} / {type: text}).
- `build_tiny_qwen2_vl`: a random-init Qwen2VLForConditionalGeneration (vision depth 1, embed
  dim 16, patch 14, images of at most 56x56 pixels: 16 patches, 4 tokens after merging; text
  model of 2 layers, hidden 32) with its Qwen2VLImageProcessor (built from parameters) and a
  Qwen2VLProcessor saved beside it; with `value_head=True` also a trl-layout
  value_head.safetensors (v_head.summary.weight / bias), the Skywork-VL-Reward layout.
- `make_image`: a small PNG made with Pillow.

Every builder writes into the folder it is given and returns it.
"""

from __future__ import annotations

from pathlib import Path

VISION_TOKENS = ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>"]
ROLE_TOKENS = ["<|im_start|>", "<|im_end|>"]
SPECIAL_TOKENS = ["<pad>", "<unk>"]

# Qwen2-VL's format, shortened: "<|im_start|>role\n" + parts + "<|im_end|>\n"; an image part is
# <|vision_start|><|image_pad|><|vision_end|> (the processor repeats <|image_pad|> per image token).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "What colour is the image ?",
    "What is in the picture ? Describe the image .",
    "The image is red . The image is blue . It is a green square .",
    "A cat sits on a mat . A dog runs in the park .",
    "Please act as an impartial judge . Compare the two answers below to the user's question and "
    "decide which one is better : more helpful , correct , relevant and clear . Do not let the order "
    "of the answers or their length sway you .",
    "[Question] [Answer A] [Answer B] Which answer is better ? Reply with a single letter : A or B .",
    "user assistant system yes no maybe one two three four",
]


def build_vl_tokenizer(folder: Path):
    """Train, wrap and save the tokenizer; returns the PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = SPECIAL_TOKENS + ROLE_TOKENS + VISION_TOKENS
    core.train_from_iterator(CORPUS, trainer=trainers.WordLevelTrainer(special_tokens=specials, min_frequency=1))
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>",
        additional_special_tokens=ROLE_TOKENS + VISION_TOKENS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def image_processor(max_pixels: int = 56 * 56):
    """Qwen2-VL's image processor from parameters: patch 14, merge 2, at most `max_pixels`."""
    from transformers import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        min_pixels=28 * 28, max_pixels=max_pixels, patch_size=14, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 28 * 28, "longest_edge": max_pixels},
    )


def video_processor():
    """A plain video processor: Qwen2VLProcessor wants one, and Qwen2-VL's own needs torchvision.

    transformers checks the argument against VideoProcessorMixin, which it exports only with
    torchvision; the class is put where that check looks for it (this test process only)."""
    import transformers.processing_utils as processing_utils
    from transformers.video_processing_utils import BaseVideoProcessor, VideoProcessorMixin

    if not hasattr(processing_utils.transformers_module, "VideoProcessorMixin"):
        setattr(processing_utils.transformers_module, "VideoProcessorMixin", VideoProcessorMixin)
    return BaseVideoProcessor()


def qwen2_vl_config(tokenizer, *, hidden: int = 32, layers: int = 2, vision_dim: int = 16, depth: int = 1):
    from transformers import Qwen2VLConfig

    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text = dict(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        # head_dim = hidden / 4 heads; M-RoPE's sections (temporal, height, width) split half of it
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                         "mrope_section": [hidden // 16, hidden // 32, hidden // 16 - hidden // 32]},
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None, initializer_range=0.2,
    )
    vision = dict(depth=depth, embed_dim=vision_dim, hidden_size=hidden, num_heads=2, mlp_ratio=2, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, in_channels=3, initializer_range=0.2)
    return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **ids)


def qwen2_5_vl_config(tokenizer):
    """Qwen2.5-VL's layout at the tests' size: a windowed vision tower (window 28, one block with
    full attention) that projects to the text width."""
    from transformers import Qwen2_5_VLConfig

    base = qwen2_vl_config(tokenizer).to_dict()
    vision = dict(depth=2, hidden_size=16, intermediate_size=32, num_heads=2, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, in_channels=3, window_size=28, fullatt_block_indexes=[1], out_hidden_size=32,
                  initializer_range=0.2)
    ids = {k: base[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
    return Qwen2_5_VLConfig(text_config=base["text_config"], vision_config=vision, tie_word_embeddings=False, **ids)


def build_tiny_qwen2_5_vl(folder: Path, *, seed: int = 0) -> Path:
    """A random-init tiny Qwen2_5_VLForConditionalGeneration with a trl value head and its
    processor's parts (tokenizer, image processor, chat template) in `folder`."""
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLProcessor

    folder = Path(folder)
    tokenizer = build_vl_tokenizer(folder)
    torch.manual_seed(seed)
    Qwen2_5_VLForConditionalGeneration(qwen2_5_vl_config(tokenizer)).eval().save_pretrained(str(folder))
    Qwen2VLProcessor(image_processor=image_processor(), tokenizer=tokenizer, video_processor=video_processor(),
                     chat_template=CHAT_TEMPLATE).save_pretrained(str(folder))
    generator = torch.Generator().manual_seed(seed + 1)
    save_file({"v_head.summary.weight": torch.randn(1, 32, generator=generator),
               "v_head.summary.bias": torch.randn(1, generator=generator)}, str(folder / "value_head.safetensors"))
    return folder


def build_tiny_qwen2_vl(folder: Path, *, value_head: bool = False, seed: int = 0, max_pixels: int = 56 * 56,
                        **sizes) -> Path:
    """A random-init tiny Qwen2VLForConditionalGeneration, its processor and (value_head) a
    trl-layout value_head.safetensors in `folder`. `sizes`: qwen2_vl_config's hidden, layers,
    vision_dim and depth (the bench's larger model)."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    folder = Path(folder)
    tokenizer = build_vl_tokenizer(folder)
    torch.manual_seed(seed)
    config = qwen2_vl_config(tokenizer, **sizes)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.save_pretrained(str(folder))
    processor = Qwen2VLProcessor(image_processor=image_processor(max_pixels), tokenizer=tokenizer,
                                 video_processor=video_processor(), chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(str(folder))
    if value_head:
        from safetensors.torch import save_file

        generator = torch.Generator().manual_seed(seed + 1)
        save_file({"v_head.summary.weight": torch.randn(1, config.text_config.hidden_size, generator=generator),
                   "v_head.summary.bias": torch.randn(1, generator=generator)}, str(folder / "value_head.safetensors"))
    return folder


def make_image(path: Path, size=(40, 30), colour=(200, 30, 30), stripe=None) -> Path:
    """A small PNG of one colour (and a stripe of another colour in its left half, when given)."""
    from PIL import Image

    image = Image.new("RGB", size, colour)
    if stripe is not None:
        for x in range(size[0] // 2):
            for y in range(size[1]):
                image.putpixel((x, y), stripe)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


REMOTE_CONFIG = '''
from transformers import PretrainedConfig


class ToyRewardConfig(PretrainedConfig):
    model_type = "toy_vl_reward"

    def __init__(self, scale=0.5, **kwargs):
        self.scale = scale
        super().__init__(**kwargs)
'''

REMOTE_MODEL = '''
import torch
from PIL import Image, ImageStat
from transformers import PreTrainedModel

from .configuration_toy import ToyRewardConfig


class ToyRewardModel(PreTrainedModel):
    """get_score(chat, image paths, hd_num) as InternLM-XComposer2.5-Reward has it: here
    weight * (mean red value of the images / 255) + scale * (words of the last message) + bias."""

    config_class = ToyRewardConfig

    def __init__(self, config):
        super().__init__(config)
        self.head = torch.nn.Linear(1, 1)
        self.post_init()

    def forward(self, x):
        return self.head(x)

    def get_score(self, chat, image, hd_num=24):
        assert self.tokenizer is not None and hd_num == 9
        reds = [ImageStat.Stat(Image.open(p).convert("RGB")).mean[0] / 255.0 for p in image]
        words = len(chat[-1]["content"].split())
        red = sum(reds) / len(reds) if reds else 0.0
        return self.head(torch.tensor([[red]]))[0, 0] + self.config.scale * words
'''


def build_remote_code_reward(folder: Path) -> Path:
    """A model folder whose repository code (auto_map) has get_score(chat, images, hd_num): head weight 2, bias 1."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    build_vl_tokenizer(folder).save_pretrained(str(folder))
    (folder / "configuration_toy.py").write_text(REMOTE_CONFIG)
    (folder / "modeling_toy.py").write_text(REMOTE_MODEL)
    config = {"model_type": "toy_vl_reward", "architectures": ["ToyRewardModel"], "scale": 0.5,
              "auto_map": {"AutoConfig": "configuration_toy.ToyRewardConfig", "AutoModel": "modeling_toy.ToyRewardModel"}}
    (folder / "config.json").write_text(__import__("json").dumps(config))
    save_file({"head.weight": torch.tensor([[2.0]]), "head.bias": torch.tensor([1.0])}, str(folder / "model.safetensors"))
    return folder


GEMMA3_SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                   "<end_of_image>", "<image_soft_token>"]
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<start_of_image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def build_tiny_gemma3_classifier(folder: Path, *, seed: int = 0) -> Path:
    """A random-init tiny Gemma3ForSequenceClassification (SigLIP tower of 1 layer on 28x28 images:
    4 image tokens) with its Gemma3Processor, which AutoProcessor loads without torchvision."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (Gemma3Config, Gemma3ForSequenceClassification, Gemma3ImageProcessorPil, Gemma3Processor,
                              PreTrainedTokenizerFast)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(CORPUS, trainer=trainers.WordLevelTrainer(special_tokens=GEMMA3_SPECIALS, min_frequency=1))
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>", eos_token="<eos>",
        extra_special_tokens={"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"},
    )
    tokenizer.chat_template = GEMMA3_TEMPLATE
    processor = Gemma3Processor(image_processor=Gemma3ImageProcessorPil(size={"height": 28, "width": 28}), tokenizer=tokenizer,
                                chat_template=GEMMA3_TEMPLATE, image_seq_length=4)
    ids = tokenizer.convert_tokens_to_ids
    config = Gemma3Config(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                         sliding_window=64, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, initializer_range=0.2),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=28, patch_size=14),
        mm_tokens_per_image=4, boi_token_index=ids("<start_of_image>"), eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"), num_labels=1, initializer_range=0.2,
    )
    torch.manual_seed(seed)
    Gemma3ForSequenceClassification(config).eval().save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder
