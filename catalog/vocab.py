"""The catalog's controlled vocabularies (DESIGN.md §3): English codes stored, Chinese labels shown.

Follows 《政务信息资源目录编制指南(试行)》 and GB/T 43697-2024; both codes and labels are accepted
wherever a person types a value (sheet import), codes only in the JSON API.
"""

import enum
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

# Labels people also write (older catalogs, abbreviations) mapped to codes.
ALIASES: dict[type[enum.StrEnum], dict[str, str]] = {
    Category: {
        "基础数据": "base",
        "主题数据": "thematic",
        "部门数据": "departmental",
        "业务数据": "departmental",
    },
    BaseKind: {"空间地理": "map", "地理": "map", "人口数据": "population", "房屋数据": "housing"},
    OpenType: {"无条件开放": "open", "不开放": "not_open"},
    Sensitivity: {"低": "L2", "高": "L4"},
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
    UpdateCycle: {"每天": "daily", "每季": "quarterly", "每年度": "annual", "不定期": "irregular"},
    DataType: {
        "字符串": "string",
        "整数": "integer",
        "数值": "decimal",
        "小数": "decimal",
        "日期": "date",
        "日期时间": "datetime",
        "布尔": "boolean",
    },
}

E = TypeVar("E", bound=enum.StrEnum)


def label(value: enum.StrEnum) -> str:
    return LABELS.get(type(value), {}).get(value.value, value.value)


def parse(kind: type[E], raw: str, *, location: str) -> E:
    """A vocabulary value from its code or Chinese label; the error lists what is allowed."""
    text = raw.strip()
    for member in kind:
        if text.lower() == member.value.lower():
            return member
    by_label = {v: k for k, v in LABELS.get(kind, {}).items()} | ALIASES.get(kind, {})
    if text in by_label:
        return kind(by_label[text])
    allowed = ", ".join(
        f"{m.value} ({LABELS[kind][m.value]})" if kind in LABELS else m.value for m in kind
    )
    raise InvalidInput(
        f"'{text}' is not a known {kind.__name__} value.",
        errors=[FieldError(location, f"Use one of: {allowed}.", "unknown_value")],
    )
