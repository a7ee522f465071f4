"""The one tokenizer for BM25: jieba word segmentation tuned for Chinese news.

Used for indexing and for queries alike, so both sides always agree. Punctuation and white
space are dropped, Latin letters are lower-cased, and numbers and codes (``D1851``,
``24000G``, ``PUE``, ``1.25``) stay whole tokens. Traditional characters are folded to
simplified first (``indexer.script``, the ``script_fold`` setting, on by default), so a
question in either script matches text in either. Question words and the commonest function
words are dropped: they carry no evidence and would let a plain-words question "match"
any passage.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from pathlib import Path

import jieba

from indexer import script
from indexer.choices import TOKENIZER_MODES, TokenizerMode
from indexer.files import sha256_file

jieba.setLogLevel(logging.WARNING)

MODES = TOKENIZER_MODES

STOPWORDS = frozenset(
    """
    的 了 是 在 和 与 及 或 等 也 都 就 而 并 对 把 被 从 向 于 为 以 之 其 这 那 该 此 各
    个 有 中 上 下 里 将 已 还 又 再 所 着 过 吗 呢 吧 啊 么 什么 哪 哪个 哪些 哪里 哪儿
    谁 多少 几 怎么 怎样 如何 为什么 是否 何时 何地 什么样 请问 一个 这个 那个 我们 你们
    他们 它们 主要 以及 关于 通过 进行 可以 是不是 有没有 多 大 哪家 哪位 几个 a an the of
    to in on at for by with from and or is are was were be been what which who whom when
    where why how does do did many much
    """.split()
)


def _is_meaningful(token: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in token)


def fingerprint(
    mode: TokenizerMode, user_dict: Path | None = None, script_fold: bool = True
) -> str:
    """What an index records about its tokenization (jieba version, mode, user dictionary,
    script folding), computed without loading jieba's dictionary."""
    extra = sha256_file(Path(user_dict))[:16] if user_dict is not None else ""
    folding = f"-fold-{script.fold_id()}" if script_fold else ""
    return f"jieba-{jieba.__version__}-{mode}-{extra}{folding}"


def from_settings(settings) -> ChineseTokenizer:
    """The tokenizer the settings describe: indexing and querying must build it the same way."""
    return ChineseTokenizer(
        mode=settings.tokenizer_mode,
        user_dict=settings.user_dict,
        script_fold=settings.script_fold,
    )


class ChineseTokenizer:
    """jieba segmentation with our filtering; ``mode`` is ``search``, ``precise`` or ``full``;
    ``script_fold`` folds traditional characters to simplified before segmenting."""

    def __init__(
        self,
        mode: TokenizerMode = "search",
        user_dict: Path | None = None,
        script_fold: bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"Unknown tokenizer mode {mode!r}; choose one of {', '.join(MODES)}.")
        self.mode = mode
        self.user_dict = user_dict
        self.script_fold = script_fold
        # Folded text has folded stopwords (么 folds to 幺).
        self._stopwords = frozenset(map(script.fold, STOPWORDS)) if script_fold else STOPWORDS
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self._jieba.initialize()
        if user_dict is not None:
            self._jieba.load_userdict(str(user_dict))

    @property
    def fingerprint(self) -> str:
        """Identifies the tokenization so an index and its queries can be checked to agree."""
        return fingerprint(self.mode, self.user_dict, self.script_fold)

    def _segment(self, text: str) -> list[str]:
        if self.mode == "search":
            return self._jieba.lcut_for_search(text)
        return self._jieba.lcut(text, cut_all=self.mode == "full")

    def tokenize(self, text: str) -> list[str]:
        if self.script_fold:
            text = script.fold(text)
        with self._lock:  # jieba's Tokenizer is not documented as thread-safe
            pieces = self._segment(text)
        tokens = []
        for piece in pieces:
            token = piece.strip().lower()
            if token and token not in self._stopwords and _is_meaningful(token):
                tokens.append(token)
        return tokens

    def tokenize_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]
