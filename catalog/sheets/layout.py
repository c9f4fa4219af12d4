"""The 目录 sheet layout: one row per data item, dataset fields repeated on each of its rows.

Every column answers to its header here, to the names of 《政务信息资源目录编制指南(试行)》
(信息资源代码, 信息资源提供方, 信息项名称 ...), to names district templates use, and to English
names. Headers are compared as `catalog.tabular.normalize_header` makes them: `*` required markers,
spaces and line breaks dropped, full-width forms and ASCII case folded. Columns the catalog does
not keep (序号, 备注, 更新日期 ...) are read past with a warning, never refused.
"""

from dataclasses import dataclass

from catalog.tabular import normalize_header


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    dataset_level: bool = True


COLUMNS: tuple[Column, ...] = (
    Column(
        "code",
        "资源代码",
        (
            "信息资源代码",
            "资源编码",
            "信息资源编码",
            "数据资源代码",
            "目录代码",
            "目录编码",
            "resource_code",
            "dataset_code",
            "code",
        ),
        required=True,
    ),
    Column(
        "title",
        "资源名称",
        (
            "信息资源名称",
            "数据资源名称",
            "目录名称",
            "数据集名称",
            "resource_name",
            "dataset_name",
            "title",
        ),
        required=True,
    ),
    Column(
        "description",
        "资源摘要",
        (
            "信息资源摘要",
            "数据资源摘要",
            "摘要",
            "资源描述",
            "资源说明",
            "summary",
            "description",
            "abstract",
        ),
    ),
    Column(
        "owner",
        "提供单位",
        (
            "信息资源提供方",
            "提供方",
            "资源提供方",
            "提供部门",
            "数源部门",
            "数据提供单位",
            "责任部门",
            "责任单位",
            "部门",
            "所属部门",
            "部门名称",
            "provider",
            "owner",
            "department",
            "publisher",
        ),
        required=True,
    ),
    # The 指南 puts the provider's code in a column of its own; either column names the owner.
    Column(
        "owner_code",
        "提供单位代码",
        (
            "信息资源提供方代码",
            "提供方代码",
            "提供部门代码",
            "部门代码",
            "单位代码",
            "provider_code",
            "owner_code",
            "department_code",
        ),
    ),
    Column(
        "category",
        "资源分类",
        ("信息资源分类", "资源属性分类", "目录分类", "资源类别", "category"),
        required=True,
    ),
    Column("base_kind", "基础数据类型", ("基础信息资源类型", "基础资源类型", "base_kind")),
    Column(
        "item_code",
        "信息项编码",
        (
            "信息项代码",
            "数据项编码",
            "数据项代码",
            "字段编码",
            "字段代码",
            "字段名",
            "字段英文名",
            "item_code",
            "field_code",
            "column_code",
        ),
        dataset_level=False,
    ),
    Column(
        "item_name",
        "信息项名称",
        (
            "信息项",
            "数据项名称",
            "数据项",
            "字段中文名",
            "字段中文名称",
            "字段名称",
            "item_name",
            "field_name",
            "column_name",
        ),
        required=True,
        dataset_level=False,
    ),
    Column(
        "item_description",
        "信息项描述",
        ("信息项说明", "数据项描述", "字段描述", "字段说明", "item_description"),
        dataset_level=False,
    ),
    Column(
        "data_type",
        "数据类型",
        ("数据格式", "信息项数据类型", "字段类型", "数据项类型", "data_type", "type"),
        required=True,
        dataset_level=False,
    ),
    Column("unit", "计量单位", ("单位", "数据单位", "unit"), dataset_level=False),
    Column(
        "nullable",
        "是否可为空",
        ("可否为空", "是否为空", "允许为空", "是否允许为空", "nullable"),
        dataset_level=False,
    ),
    Column("share_type", "共享类型", ("共享属性", "共享类别", "share_type"), required=True),
    Column("share_condition", "共享条件", ("share_condition",)),
    Column(
        "legal_basis",
        "不予共享依据",
        ("不共享依据", "不予共享理由", "不予共享原因", "legal_basis"),
    ),
    Column("share_methods", "共享方式", ("共享方式类型", "share_method", "share_methods")),
    Column("open_type", "开放属性", ("开放类型", "是否向社会开放", "是否开放", "open_type")),
    Column(
        "update_cycle",
        "更新周期",
        ("更新频率", "更新频次", "更新频度", "update_cycle", "frequency"),
        required=True,
    ),
    Column(
        "publication_lag_days",
        "发布滞后天数",
        ("滞后天数", "发布时滞", "发布时滞(天)", "publication_lag_days", "lag_days"),
    ),
    Column("data_grade", "数据分级", ("数据级别", "数据等级", "data_grade")),
    # The dataset's level; when it differs between a dataset's rows, each row's is its item's.
    Column("sensitivity", "敏感级别", ("敏感等级", "敏感程度", "sensitivity")),
    Column("aggregated", "是否已归集", ("是否归集", "已归集", "aggregated")),
    Column(
        "temporal_start",
        "数据起始日期",
        ("起始日期", "开始日期", "数据开始日期", "时间范围起", "temporal_start"),
    ),
    Column(
        "temporal_end",
        "数据截止日期",
        ("截止日期", "结束日期", "数据结束日期", "时间范围止", "temporal_end"),
    ),
    Column("spatial_coverage", "空间范围", ("覆盖范围", "地域范围", "spatial_coverage")),
    # Beyond the 指南 columns: what a round trip needs to lose nothing.
    Column("status", "状态", ("目录状态", "发布状态", "status")),
    Column("is_key", "是否主键", ("主键", "is_key", "primary_key"), dataset_level=False),
    Column("enum", "取值范围", ("值域", "可选值", "enum", "allowed_values"), dataset_level=False),
    Column("pattern", "格式", ("格式要求", "pattern"), dataset_level=False),
    Column("minimum", "最小值", ("minimum", "min"), dataset_level=False),
    Column("maximum", "最大值", ("maximum", "max"), dataset_level=False),
    Column(
        "item_sensitivity",
        "信息项敏感级别",
        ("信息项敏感等级", "数据项敏感级别", "item_sensitivity"),
        dataset_level=False,
    ),
    # Issue 14: how the item leaves under a grant unless an approval lifts it, and why.
    Column(
        "default_protection",
        "默认脱敏方式",
        ("default_protection", "脱敏方式"),
        dataset_level=False,
    ),
    Column("personal_info", "个人信息类型", ("personal_info", "个人信息"), dataset_level=False),
    # Issue 15: how a numeric item combines when a grant aggregates rows (求和, 平均, 期末值 ...).
    Column("aggregation", "汇总方式", ("aggregation", "聚合方式"), dataset_level=False),
)

# Headers offices put in a 目录 sheet that the catalog does not keep, with why: read past, noted.
IGNORED: dict[str, str] = {
    "序号": "a row number",
    "编号": "a row number",
    "备注": "remarks are not kept",
    "说明": "remarks are not kept",
    "更新日期": "the catalog dates its own changes",
    "填报日期": "the catalog dates its own changes",
    "发布日期": "the catalog dates its own changes",
    "信息资源格式": "the format of each release is its own",
    "资源格式": "the format of each release is its own",
    "关联资源代码": "related resources are not kept",
    "数据长度": "lengths are not checked; use 格式 or 取值范围 to constrain a value",
    "字段长度": "lengths are not checked; use 格式 or 取值范围 to constrain a value",
    "开放条件": "the catalog keeps 开放属性 only",
    "联系人": "contacts are kept with the department",
    "联系电话": "contacts are kept with the department",
}

BY_NAME: dict[str, Column] = {}
for _column in COLUMNS:
    for _name in (_column.header, _column.key, *_column.aliases):
        BY_NAME[normalize_header(_name)] = _column
IGNORED_BY_NAME = {normalize_header(name): why for name, why in IGNORED.items()}
REQUIRED = tuple(c for c in COLUMNS if c.required)
# A column that, when present, stands in for a required one.
STANDS_IN_FOR = {"owner_code": "owner"}

# Excel's TRUE/FALSE, 1/0, 是/否, ticks and crosses; compared after NFKC and in lower case.
TRUE_WORDS = {"是", "true", "yes", "y", "1", "已归集", "√", "✓", "✔", "对"}
FALSE_WORDS = {"否", "false", "no", "n", "0", "未归集", "×", "✗", "✘", "错"}
LIST_SEPARATORS = r"[、,，;；|/]"


def column_for(header: str) -> Column | None:
    """The column a header (as typed) names, if any."""
    return BY_NAME.get(normalize_header(header))


def present_keys(normalized: list[str]) -> set[str]:
    """The keys of the columns a header row (of `normalize_header` texts) holds."""
    return {BY_NAME[text].key for text in normalized if text in BY_NAME}


def missing_required(keys: set[str]) -> list[Column]:
    """The required columns a header row lacks (提供单位代码 stands in for 提供单位)."""
    stood_in = {STANDS_IN_FOR[k] for k in keys if k in STANDS_IN_FOR}
    return [c for c in REQUIRED if c.key not in keys and c.key not in stood_in]


def is_full_header(normalized: list[str]) -> bool:
    """A row that holds every required column: the 目录 header, not a group row above it."""
    keys = present_keys(normalized)
    return len(keys) >= 3 and not missing_required(keys)


def is_partial_header(normalized: list[str]) -> bool:
    """A row that names at least three 目录 columns: the header, short of some required one."""
    return len(present_keys(normalized)) >= 3
