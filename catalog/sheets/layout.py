"""The 目录 sheet layout: one row per data item, dataset fields repeated on each of its rows."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    dataset_level: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("code", "资源代码", ("resource_code", "dataset_code", "code"), required=True),
    Column("title", "资源名称", ("resource_name", "title"), required=True),
    Column("description", "资源摘要", ("summary", "description")),
    Column("owner", "提供单位", ("provider", "owner", "department"), required=True),
    Column("category", "资源分类", ("category",), required=True),
    Column("base_kind", "基础数据类型", ("base_kind",)),
    Column("item_code", "信息项编码", ("item_code",), required=True, dataset_level=False),
    Column("item_name", "信息项名称", ("item_name",), required=True, dataset_level=False),
    Column("data_type", "数据类型", ("data_type",), required=True, dataset_level=False),
    Column("unit", "计量单位", ("unit",), dataset_level=False),
    Column("nullable", "是否可为空", ("nullable",), dataset_level=False),
    Column("share_type", "共享类型", ("share_type",), required=True),
    Column("share_condition", "共享条件", ("share_condition",)),
    Column("legal_basis", "不予共享依据", ("legal_basis",)),
    Column("share_methods", "共享方式", ("share_method", "share_methods")),
    Column("open_type", "开放属性", ("open_type",)),
    Column("update_cycle", "更新周期", ("update_cycle",), required=True),
    Column("publication_lag_days", "发布滞后天数", ("publication_lag_days", "lag_days")),
    Column("data_grade", "数据分级", ("data_grade",)),
    Column("sensitivity", "敏感级别", ("sensitivity",)),
    Column("aggregated", "是否已归集", ("aggregated",)),
    # Beyond the 指南 columns: what a round trip needs to lose nothing.
    Column("status", "状态", ("status",)),
    Column("is_key", "是否主键", ("is_key",), dataset_level=False),
    Column("enum", "取值范围", ("enum", "allowed_values"), dataset_level=False),
    Column("pattern", "格式", ("pattern",), dataset_level=False),
    Column("minimum", "最小值", ("minimum", "min"), dataset_level=False),
    Column("maximum", "最大值", ("maximum", "max"), dataset_level=False),
    Column("item_sensitivity", "信息项敏感级别", ("item_sensitivity",), dataset_level=False),
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

BY_NAME: dict[str, Column] = {}
for _column in COLUMNS:
    for _name in (_column.header, _column.key, *_column.aliases):
        BY_NAME[_name.strip().lower()] = _column

TRUE_WORDS = {"是", "true", "yes", "y", "1", "已归集"}
FALSE_WORDS = {"否", "false", "no", "n", "0", "未归集"}
LIST_SEPARATORS = r"[、,，;；|/]"
