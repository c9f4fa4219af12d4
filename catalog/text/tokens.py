"""Turning Chinese, English and codes into search tokens, the same way on every database.

Chosen: jieba (search mode, plus the domain dictionary below) for words, and every CJK character
bigram as well. The bigrams make recall independent of how jieba happens to split a longer
phrase (用电 inside 全社会用电量, 税收 inside 税收收入): any query of two or more CJK characters
is matched as the AND of its bigrams, which is what Lucene's CJK analyzer does. jieba's words add
precision for ranking: a title containing the query as a whole word ranks above one that merely
contains its bigrams. One-character queries cannot use either and fall back to substring search.
Tokenising in Python and handing the database ready-made tokens is what makes SQLite (FTS5) and
PostgreSQL (tsvector) return identical results.
"""

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache

import jieba

DOMAIN_WORDS = (
    "规模以上",
    "工业总产值",
    "地区生产总值",
    "社会消费品零售总额",
    "固定资产投资",
    "税收收入",
    "一般公共预算收入",
    "全社会用电量",
    "用电量",
    "常住人口",
    "户籍人口",
    "实有人口",
    "人房数据",
    "城运中心",
    "大数据中心",
    "营业执照",
    "统一社会信用代码",
    "外商直接投资",
    "进出口总额",
    "商品房销售面积",
    "城镇居民人均可支配收入",
    "城镇登记失业率",
    "招商引资",
    "电子证照",
    "房屋",
    "人口",
    "税收",
    "用电",
)

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[{_CJK}]+|[a-z0-9][a-z0-9._-]*")
_lock = threading.Lock()


@cache
def _tokenizer() -> jieba.Tokenizer:
    with _lock:
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        for word in DOMAIN_WORDS:
            tokenizer.add_word(word, freq=200_000)
        tokenizer.initialize()
        return tokenizer


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _is_cjk(run: str) -> bool:
    return bool(re.match(rf"[{_CJK}]", run))


def _bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


def _ascii_tokens(run: str) -> list[str]:
    run = run.strip("._-")
    if not run:
        return []
    parts = [p for p in re.split(r"[._-]+", run) if p]
    return [run, *parts] if len(parts) > 1 else [run]


def index_tokens(*texts: str | None) -> list[str]:
    """Every token a text should be findable by, deduplicated, in first-seen order."""
    seen: dict[str, None] = {}
    for text in texts:
        if not text:
            continue
        for run in _RUN.findall(normalise(text)):
            if _is_cjk(run):
                for word in _tokenizer().cut_for_search(run):
                    if len(word) >= 2:
                        seen.setdefault(word, None)
                for gram in _bigrams(run):
                    seen.setdefault(gram, None)
                if len(run) == 1:
                    seen.setdefault(run, None)
            else:
                for token in _ascii_tokens(run):
                    seen.setdefault(token, None)
    return list(seen)


@dataclass(frozen=True)
class Query:
    """What a search box string asks for."""

    required: tuple[str, ...]  # every one must be an index token
    words: tuple[str, ...]  # whole words, for ranking
    substrings: tuple[str, ...]  # single CJK characters: matched as substrings
    text: str

    @property
    def empty(self) -> bool:
        return not (self.required or self.substrings)


def parse_query(text: str) -> Query:
    required: dict[str, None] = {}
    words: dict[str, None] = {}
    substrings: dict[str, None] = {}
    for run in _RUN.findall(normalise(text)):
        if _is_cjk(run):
            if len(run) == 1:
                substrings.setdefault(run, None)
                continue
            for gram in _bigrams(run):
                required.setdefault(gram, None)
            for word in _tokenizer().cut(run):
                if len(word) >= 2:
                    words.setdefault(word, None)
        else:
            token = run.strip("._-")
            if token:
                required.setdefault(token, None)
                words.setdefault(token, None)
    return Query(tuple(required), tuple(words), tuple(substrings), normalise(text).strip())
