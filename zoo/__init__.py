"""Tokenizer Zoo: discrete image, video and audio tokenizers with one API.

>>> import zoo
>>> zoo.list_tokenizers(modality="image")
>>> tok = zoo.create_tokenizer("titok_l32.in1k", pretrained=True)
>>> tokens = tok.encode(images)          # images [B, 3, H, W] in [0, 1]
>>> recon = tok.decode(tokens)
"""
from .api import Tokenizer, TokenizerOutput, Tokens, from_pretrained
from .checkpoint import CheckpointMismatchError, load_on_meta
from .convert import list_converters, load_official
from .convert.architecture import ArchitectureMismatchError
from .hub import WeightsNotFoundError
from .registry import create_tokenizer, get_info, list_tokenizers, register_tokenizer

__version__ = "0.1.0"

__all__ = ["Tokenizer", "TokenizerOutput", "Tokens", "from_pretrained", "create_tokenizer", "get_info",
           "list_tokenizers", "register_tokenizer", "load_official", "list_converters",
           "CheckpointMismatchError", "ArchitectureMismatchError", "WeightsNotFoundError", "load_on_meta",
           "__version__"]
