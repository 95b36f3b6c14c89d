"""The model configs the hf tests use: real published ``config.json`` objects (copied, not downloaded)
and tiny ones covering every family, head and switch (GQA, head_dim given, biases, padding rows, ties).

The real ones are checked at full size on the meta device only: nothing is drawn or allocated.
"""

from __future__ import annotations

#: Published config.json objects, key for key (the keys weightinit does not read are kept, as a user sends them).
REAL: dict[str, dict] = {
    "meta-llama/Llama-2-7b-hf": {
        "_name_or_path": "meta-llama/Llama-2-7b-hf", "architectures": ["LlamaForCausalLM"], "bos_token_id": 1,
        "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
        "intermediate_size": 11008, "max_position_embeddings": 4096, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32, "pretraining_tp": 1,
        "rms_norm_eps": 1e-05, "rope_scaling": None, "tie_word_embeddings": False, "torch_dtype": "float16",
        "transformers_version": "4.31.0.dev0", "use_cache": True, "vocab_size": 32000},
    "meta-llama/Meta-Llama-3-8B": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
        "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 8192,
        "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 500000.0,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0",
        "use_cache": True, "vocab_size": 128256},
    "mistralai/Mistral-7B-v0.1": {
        "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
        "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
        "sliding_window": 4096, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.34.0.dev0", "use_cache": True, "vocab_size": 32000},
    "Qwen/Qwen2-7B": {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
        "intermediate_size": 18944, "max_position_embeddings": 131072, "max_window_layers": 28,
        "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.37.2", "use_cache": True,
        "use_sliding_window": False, "vocab_size": 152064},
    "Qwen/Qwen2-0.5B": {  # tied: lm_head is the token embedding
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
        "intermediate_size": 4864, "max_position_embeddings": 131072, "max_window_layers": 24,
        "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": True,
        "use_sliding_window": False, "vocab_size": 151936},
    "Qwen/Qwen3-8B": {
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 12288,
        "max_position_embeddings": 40960, "max_window_layers": 36, "model_type": "qwen3",
        "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
        "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": True,
        "use_sliding_window": False, "vocab_size": 151936},
    "google/gemma-2b": {  # head_dim 256 != hidden_size / heads (2048 / 8), one k/v head, pad_token_id 0, tied
        "architectures": ["GemmaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 2, "eos_token_id": 1, "head_dim": 256, "hidden_act": "gelu", "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": 16384, "max_position_embeddings": 8192,
        "model_type": "gemma", "num_attention_heads": 8, "num_hidden_layers": 18, "num_key_value_heads": 1,
        "pad_token_id": 0, "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 10000.0,
        "torch_dtype": "bfloat16", "transformers_version": "4.38.0.dev0", "use_cache": True,
        "vocab_size": 256000},
    "openai-community/gpt2": {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
        "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
        "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": None,
        "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
        "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": 50257},
    "google-bert/bert-base-uncased": {
        "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
        "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522},
}
# The same checkpoint's encoder alone (BertModel: a pooler, no prediction head).
REAL["google-bert/bert-base-uncased (BertModel)"] = {**REAL["google-bert/bert-base-uncased"],
                                                    "architectures": ["BertModel"]}

#: The published parameter counts (model cards, num_parameters()): a check on the configs themselves.
PUBLISHED_PARAMETERS = {
    "meta-llama/Llama-2-7b-hf": 6_738_415_616, "meta-llama/Meta-Llama-3-8B": 8_030_261_248,
    "mistralai/Mistral-7B-v0.1": 7_241_732_096, "Qwen/Qwen2-7B": 7_615_616_512, "Qwen/Qwen2-0.5B": 494_032_768,
    "Qwen/Qwen3-8B": 8_190_735_360, "google/gemma-2b": 2_506_172_416, "openai-community/gpt2": 124_439_808,
    "google-bert/bert-base-uncased (BertModel)": 109_482_240,
}


def _decoder(model_type: str, architecture: str, **keys) -> dict:
    return {"model_type": model_type, "architectures": [architecture], "vocab_size": 256, "hidden_size": 64,
            "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64,
            **keys}


def _gpt2(architecture: str, **keys) -> dict:
    return {"model_type": "gpt2", "architectures": [architecture], "vocab_size": 256, "n_embd": 64, "n_layer": 2,
            "n_head": 4, "n_positions": 64, **keys}


def _bert(architecture: str, **keys) -> dict:
    return {"model_type": "bert", "architectures": [architecture], "vocab_size": 256, "hidden_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 96, "max_position_embeddings": 64,
            **keys}


#: Tiny configs of every family and head, each switch of the families at least once.
TINY: dict[str, dict] = {
    "llama": _decoder("llama", "LlamaForCausalLM"),
    "llama gqa biases head_dim pad": _decoder("llama", "LlamaForCausalLM", num_key_value_heads=2, head_dim=24,
                                              attention_bias=True, mlp_bias=True, pad_token_id=3),
    "llama tied": _decoder("llama", "LlamaForCausalLM", tie_word_embeddings=True, pad_token_id=-1),
    "llama base": _decoder("llama", "LlamaModel", num_key_value_heads=1),
    "mistral": _decoder("mistral", "MistralForCausalLM", num_key_value_heads=2, head_dim=32),
    "mistral base": _decoder("mistral", "MistralModel", num_key_value_heads=4),
    "llama bfloat16": _decoder("llama", "LlamaForCausalLM", num_key_value_heads=2, dtype="bfloat16"),
    "qwen2": _decoder("qwen2", "Qwen2ForCausalLM", num_key_value_heads=2),
    "qwen2 head_dim float16": _decoder("qwen2", "Qwen2ForCausalLM", num_key_value_heads=2, head_dim=24,
                                       torch_dtype="float16"),
    "qwen2 tied": _decoder("qwen2", "Qwen2ForCausalLM", num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2 base": _decoder("qwen2", "Qwen2Model", num_key_value_heads=4),
    "qwen3": _decoder("qwen3", "Qwen3ForCausalLM", num_key_value_heads=2, head_dim=16),
    "qwen3 biases tied": _decoder("qwen3", "Qwen3ForCausalLM", num_key_value_heads=1, head_dim=32,
                                  attention_bias=True, tie_word_embeddings=True, pad_token_id=0),
    "qwen3 base": _decoder("qwen3", "Qwen3Model", num_key_value_heads=4, head_dim=16),
    "gemma": _decoder("gemma", "GemmaForCausalLM", num_key_value_heads=1, head_dim=32),
    "gemma untied biases": _decoder("gemma", "GemmaForCausalLM", num_key_value_heads=2, head_dim=16,
                                    attention_bias=True, tie_word_embeddings=False, pad_token_id=5),
    "gemma base": _decoder("gemma", "GemmaModel", num_key_value_heads=4, head_dim=16),
    "gpt2": _gpt2("GPT2LMHeadModel"),
    "gpt2 untied n_inner": _gpt2("GPT2LMHeadModel", tie_word_embeddings=False, n_inner=96),
    "gpt2 base": _gpt2("GPT2Model"),
    "bert mlm": _bert("BertForMaskedLM", pad_token_id=0),
    "bert mlm untied": _bert("BertForMaskedLM", tie_word_embeddings=False, type_vocab_size=3, pad_token_id=7),
    "bert base": _bert("BertModel", pad_token_id=None),
}


def _medium(model_type: str, architecture: str, **keys) -> dict:
    return {"model_type": model_type, "architectures": [architecture], "vocab_size": 512, "hidden_size": 128,
            "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 32, "max_position_embeddings": 64, "initializer_range": 0.03, **keys}


#: For the statistics: every weight has at least 4096 elements (a KS test sees a std off by 10%), the
#: config's initializer_range is not the default 0.02, and every family has a padding row.
MEDIUM: dict[str, dict] = {
    "llama": _medium("llama", "LlamaForCausalLM", attention_bias=True, mlp_bias=True, pad_token_id=3),
    "mistral": _medium("mistral", "MistralForCausalLM", pad_token_id=-1),
    "qwen2": _medium("qwen2", "Qwen2ForCausalLM", pad_token_id=7),
    "qwen3": _medium("qwen3", "Qwen3ForCausalLM", attention_bias=True, pad_token_id=0),
    "gemma": _medium("gemma", "GemmaForCausalLM", tie_word_embeddings=False),  # pad_token_id 0 by default
    "gpt2": {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 512, "n_embd": 128,
             "n_layer": 3, "n_head": 4, "n_positions": 64, "initializer_range": 0.03, "tie_word_embeddings": False},
    "bert": {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": 512, "hidden_size": 128,
             "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256, "max_position_embeddings": 64,
             "type_vocab_size": 32, "pad_token_id": 1, "initializer_range": 0.03, "tie_word_embeddings": False},
}
# transformers reads `initializer_range or 0.02`: 0.0 draws at 0.02 ...
MEDIUM["llama initializer_range 0.0"] = {**MEDIUM["llama"], "initializer_range": 0.0}
# ... except GPT-2's Conv1D, which read it as given: zeros
MEDIUM["gpt2 initializer_range 0.0"] = {**MEDIUM["gpt2"], "initializer_range": 0.0}
