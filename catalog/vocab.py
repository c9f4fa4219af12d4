"""The catalog's controlled vocabularies (DESIGN.md §3): English codes stored, Chinese labels shown.

Follows 《政务信息资源目录编制指南(试行)》 and GB/T 43697-2024; both codes and labels are accepted
wherever a person types a value (sheet import), codes only in the JSON API.
"""

import enum
import unicodedata
from typing import TypeVar

from core.errors import FieldError, InvalidInput


class Category(enum.StrEnum):
    base = "base"
    thematic = "thematic"
    departmental = "departmental"


class BaseKind(enum.StrEnum):
    map = "map"
    population = "population"
    housing = "housing"
    legal_entity = "legal_entity"
    credit = "credit"
    license = "license"


class ShareType(enum.StrEnum):
    unconditional = "unconditional"
    conditional = "conditional"
    none = "none"


class OpenType(enum.StrEnum):
    open = "open"
    conditional_open = "conditional_open"
    not_open = "not_open"


class DataGrade(enum.StrEnum):
    general = "general"
    important = "important"
    core = "core"


class Sensitivity(enum.StrEnum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"

    @property
    def level(self) -> int:
        return int(self.value[1])


class UpdateCycle(enum.StrEnum):
    realtime = "realtime"
    daily = "daily"
    weekly = "weekly"
    dekad = "dekad"
    monthly = "monthly"
    quarterly = "quarterly"
    semiannual = "semiannual"
    annual = "annual"
    irregular = "irregular"


class ShareMethod(enum.StrEnum):
    api = "api"
    file = "file"
    db_exchange = "db_exchange"
    verify = "verify"
    in_platform = "in_platform"


class DataType(enum.StrEnum):
    string = "string"
    integer = "integer"
    decimal = "decimal"
    boolean = "boolean"
    date = "date"
    datetime = "datetime"
    geometry = "geometry"


class DatasetStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    deprecated = "deprecated"


class Protection(enum.StrEnum):
    """How an item leaves by default when a grant does not say otherwise (`none`: in clear)."""

    hash = "hash"
    partial = "partial"
    null = "null"
    none = "none"


class PersonalInfo(enum.StrEnum):
    """Which kind of personal information an item holds (个人信息保护法), if any."""

    id_number = "id_number"
    phone = "phone"
    name = "name"
    address = "address"
    licence_plate = "licence_plate"
    bank_account = "bank_account"
    email = "email"
    other = "other"


class Aggregation(enum.StrEnum):
    """How a numeric item combines when rows are aggregated to a level (`none`: it cannot be)."""

    sum = "sum"
    mean = "mean"
    min = "min"
    max = "max"
    last = "last"
    none = "none"


class Freshness(enum.StrEnum):
    fresh = "fresh"
    due = "due"
    stale = "stale"


LABELS: dict[type[enum.StrEnum], dict[str, str]] = {
    Category: {"base": "基础", "thematic": "主题", "departmental": "部门"},
    BaseKind: {
        "map": "地图",
        "population": "人口",
        "housing": "房屋",
        "legal_entity": "法人",
        "credit": "信用",
        "license": "电子证照",
    },
    ShareType: {"unconditional": "无条件共享", "conditional": "有条件共享", "none": "不予共享"},
    OpenType: {"open": "开放", "conditional_open": "有条件开放", "not_open": "不予开放"},
    DataGrade: {"general": "一般", "important": "重要", "core": "核心"},
    Sensitivity: {"L1": "不敏感", "L2": "低敏感", "L3": "较敏感", "L4": "敏感"},
    UpdateCycle: {
        "realtime": "实时",
        "daily": "每日",
        "weekly": "每周",
        "dekad": "每旬",
        "monthly": "每月",
        "quarterly": "每季度",
        "semiannual": "每半年",
        "annual": "每年",
        "irregular": "其他",
    },
    ShareMethod: {
        "api": "接口",
        "file": "文件下载",
        "db_exchange": "库表交换",
        "verify": "核验",
        "in_platform": "平台内使用",
    },
    DataType: {
        "string": "字符型",
        "integer": "整数型",
        "decimal": "数值型",
        "boolean": "布尔型",
        "date": "日期型",
        "datetime": "日期时间型",
        "geometry": "空间型",
    },
    DatasetStatus: {"draft": "草稿", "published": "已发布", "deprecated": "已废止"},
    Aggregation: {
        "sum": "求和",
        "mean": "平均",
        "min": "最小值",
        "max": "最大值",
        "last": "期末值",
        "none": "不可汇总",
    },
    Protection: {"hash": "哈希", "partial": "部分遮盖", "null": "置空", "none": "不脱敏"},
    PersonalInfo: {
        "id_number": "身份证号",
        "phone": "手机号码",
        "name": "姓名",
        "address": "住址",
        "licence_plate": "车牌号",
        "bank_account": "银行账号",
        "email": "电子邮箱",
        "other": "其他个人信息",
    },
}

# Words people also write (the 指南's own terms, older catalogs, everyday words, the 指南's
# one-letter type codes C/N/D/T/L...) mapped to codes. Matched after NFKC (full-width letters,
# digits and punctuation become ASCII), without spaces, ASCII case ignored.
ALIASES: dict[type[enum.StrEnum], dict[str, str]] = {
    Category: {
        "基础数据": "base",
        "基础信息资源": "base",
        "基础信息资源类": "base",
        "基础信息资源目录": "base",
        "基础类": "base",
        "主题数据": "thematic",
        "主题信息资源": "thematic",
        "主题信息资源类": "thematic",
        "主题信息资源目录": "thematic",
        "主题类": "thematic",
        "部门数据": "departmental",
        "部门信息资源": "departmental",
        "部门信息资源类": "departmental",
        "部门信息资源目录": "departmental",
        "部门类": "departmental",
        "业务数据": "departmental",
    },
    BaseKind: {
        "空间地理": "map",
        "地理": "map",
        "自然资源和空间地理": "map",
        "人口数据": "population",
        "人口基础信息": "population",
        "房屋数据": "housing",
        "法人单位": "legal_entity",
        "法人单位基础信息": "legal_entity",
        "社会信用": "credit",
        "证照": "license",
    },
    ShareType: {
        "无条件": "unconditional",
        "有条件": "conditional",
        "不共享": "none",
        "不予": "none",
    },
    OpenType: {
        "无条件开放": "open",
        "是": "open",
        "依申请开放": "conditional_open",
        "不开放": "not_open",
        "否": "not_open",
    },
    DataGrade: {"一般数据": "general", "重要数据": "important", "核心数据": "core"},
    Sensitivity: {
        "低": "L2",
        "高": "L4",
        **{f"{n}级": f"L{i}" for i, n in enumerate("1234", start=1)},
        **{f"{n}级": f"L{i}" for i, n in enumerate("一二三四", start=1)},
    },
    ShareMethod: {
        "API": "api",
        "服务接口": "api",
        "接口服务": "api",
        "数据接口": "api",
        "文件": "file",
        "电子文件": "file",
        "文件交换": "file",
        "下载": "file",
        "数据库": "db_exchange",
        "库表": "db_exchange",
        "数据库交换": "db_exchange",
        "库表推送": "db_exchange",
        "数据核验": "verify",
        "核查": "verify",
    },
    DatasetStatus: {"发布": "published", "有效": "published", "废止": "deprecated"},
    Protection: {
        "散列": "hash",
        "掩码": "partial",
        "遮盖": "partial",
        "无": "none",
        "明文": "none",
    },
    PersonalInfo: {
        "身份证": "id_number",
        "身份证号码": "id_number",
        "手机": "phone",
        "电话": "phone",
    },
    # 每半月 has no cycle of its own: 旬 is the nearest at least as frequent, so its data is
    # called due at most five days early and never stale wrongly (catalog/datasets/freshness.py).
    UpdateCycle: {
        "实时更新": "realtime",
        "日": "daily",
        "每天": "daily",
        "日度": "daily",
        "按日": "daily",
        "周": "weekly",
        "按周": "weekly",
        "旬": "dekad",
        "按旬": "dekad",
        "半月": "dekad",
        "每半月": "dekad",
        "月": "monthly",
        "月度": "monthly",
        "按月": "monthly",
        "季": "quarterly",
        "季度": "quarterly",
        "每季": "quarterly",
        "按季": "quarterly",
        "按季度": "quarterly",
        "半年": "semiannual",
        "半年度": "semiannual",
        "按半年": "semiannual",
        "年": "annual",
        "年度": "annual",
        "每年度": "annual",
        "按年": "annual",
        "不定期": "irregular",
        "不定时": "irregular",
        "按需": "irregular",
    },
    DataType: {
        "字符": "string",
        "字符串": "string",
        "字符串型": "string",
        "文本": "string",
        "文本型": "string",
        "备注型": "string",
        "C": "string",
        "M": "string",
        "varchar": "string",
        "char": "string",
        "text": "string",
        "整数": "integer",
        "整型": "integer",
        "I": "integer",
        "int": "integer",
        "bigint": "integer",
        "数值": "decimal",
        "数字": "decimal",
        "数字型": "decimal",
        "小数": "decimal",
        "浮点型": "decimal",
        "双精度型": "decimal",
        "货币型": "decimal",
        "N": "decimal",
        "F": "decimal",
        "B": "decimal",
        "Y": "decimal",
        "number": "decimal",
        "numeric": "decimal",
        "float": "decimal",
        "double": "decimal",
        "日期": "date",
        "D": "date",
        "日期时间": "datetime",
        "时间戳": "datetime",
        "T": "datetime",
        "timestamp": "datetime",
        "布尔": "boolean",
        "逻辑型": "boolean",
        "L": "boolean",
        "bool": "boolean",
        "空间": "geometry",
    },
}

E = TypeVar("E", bound=enum.StrEnum)


def label(value: enum.StrEnum) -> str:
    return LABELS.get(type(value), {}).get(value.value, value.value)


def words(raw: str) -> str:
    """A typed word as compared: NFKC (full-width ＡＢＣ１２３／ become ABC123/), no spaces."""
    return "".join(unicodedata.normalize("NFKC", raw).split())


def _words_of(kind: type[enum.StrEnum]) -> dict[str, str]:
    """Every word `parse` accepts for a vocabulary, lower-cased, to its code."""
    known = _WORDS.get(kind)
    if known is None:
        written = {v: k for k, v in LABELS.get(kind, {}).items()} | ALIASES.get(kind, {})
        known = {m.value.lower(): m.value for m in kind}
        known |= {word.lower(): code for word, code in written.items() if word.lower() not in known}
        _WORDS[kind] = known
    return known


_WORDS: dict[type[enum.StrEnum], dict[str, str]] = {}


def parse(kind: type[E], raw: str, *, location: str) -> E:
    """A vocabulary value from its code, its Chinese label or a word people write for it
    (`ALIASES`); full-width characters, spaces and ASCII case do not matter. The error lists
    what is allowed."""
    code = _words_of(kind).get(words(raw).lower())
    if code is not None:
        return kind(code)
    allowed = ", ".join(
        f"{m.value} ({LABELS[kind][m.value]})" if kind in LABELS else m.value for m in kind
    )
    raise InvalidInput(
        f"'{raw.strip()}' is not a known {kind.__name__} value.",
        errors=[FieldError(location, f"Use one of: {allowed}.", "unknown_value")],
    )
