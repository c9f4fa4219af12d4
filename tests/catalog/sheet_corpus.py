"""目录 sheets built the ways district offices build them (issue 16's "seen refused or broken").

Each `Case` is one file as an office would send it: the habit it reproduces, and what the import
must do with it: create these datasets (warning about what it read generously), or refuse it
naming the row as the sheet shows it and the fix. The departments are the demo district's
(`support.catalog_data.seed_district`): 区统计局 (stats), 区发展和改革委员会 (drc), ...
"""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import xlwt  # type: ignore[import-untyped]
from openpyxl import Workbook

Cell = str | int | float | bool | date | datetime | None
Rows = Sequence[Sequence[Cell]]


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    data: bytes
    habit: str  # what the office did
    created: tuple[str, ...] = ()  # dataset codes the import creates, in sheet order
    warnings: tuple[str, ...] = ()  # fragments the dry run's warnings hold
    refused_at: str | None = None  # the error's location, as the sheet shows it
    refused_with: str = ""  # a fragment of that error's message: the fix


@dataclass(frozen=True)
class Book:
    """One sheet of a workbook: its rows, the ranges merged (`A1:J1`) and its name."""

    rows: Rows
    merged: tuple[str, ...] = ()
    name: str = "目录"


@dataclass
class Corpus:
    cases: list[Case] = field(default_factory=list)

    def add(self, case: Case) -> None:
        self.cases.append(case)


# ---------------------------------------------------------------- writers


def text(rows: Rows, *, encoding: str = "utf-8", separator: str = ",") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
    writer.writerows([["" if c is None else str(c) for c in row] for row in rows])
    if encoding == "utf-16":  # Excel's "Unicode 文本": UTF-16 LE with its BOM
        return b"\xff\xfe" + buffer.getvalue().encode("utf-16-le")
    return buffer.getvalue().encode(encoding)


def xlsx(*sheets: Book) -> bytes:
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    for book in sheets:
        sheet = workbook.create_sheet(book.name)
        for row in book.rows:
            sheet.append(list(row))
        for cells in book.merged:
            sheet.merge_cells(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xls(rows: Rows, *, title: str | None = None) -> bytes:
    """A legacy .xls (BIFF8) as old office machines save it, dates as date cells."""
    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet("目录")
    dated = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    offset = 0
    if title is not None:
        sheet.write_merge(0, 0, 0, len(rows[0]) - 1, title)
        offset = 1
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, date):
                sheet.write(r + offset, c, value, dated)
            elif value is not None:
                sheet.write(r + offset, c, value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- the sheets' contents

HEADER = ["资源代码", "资源名称", "提供单位", "资源分类", "信息项编码", "信息项名称", "数据类型"]
HEADER += ["共享类型", "共享条件", "更新周期"]


def dataset(
    code: str, title: str, *, owner: str = "区统计局", cycle: str = "每月", items: str = ""
) -> list[list[Cell]]:
    """Three item rows of one dataset in the current layout (HEADER); item codes start with
    `items` (default: the dataset's code)."""
    prefix = items or code
    return [
        [code, title, owner, "部门", f"{prefix}-{suffix}", name, kind, "无条件共享", "", cycle]
        for suffix, name, kind in (
            ("CZRK", "常住人口数", "整数型"),
            ("HJRK", "户籍人口数", "整数型"),
            ("CSHL", "城镇化率", "数值型"),
        )
    ]


def build() -> list[Case]:
    corpus = Corpus()

    # -- the 指南's own header names, as the 编制指南's template lays them out
    guide = ["信息资源分类", "信息资源名称", "信息资源代码", "信息资源提供方", "信息资源提供方代码"]
    guide += ["信息资源摘要", "信息资源格式", "信息项名称", "数据类型", "共享类型", "共享条件"]
    guide += ["共享方式", "开放属性", "更新周期", "发布日期", "关联资源代码"]
    guide_rows: list[Sequence[Cell]] = [guide]
    for name, kind in (("地区生产总值", "N"), ("第一产业增加值", "数值型"), ("统计口径", "C")):
        guide_rows.append(
            [
                "部门信息资源/区统计局",
                "地区生产总值季度核算",
                "TJ-GDP-Q",
                "区统计局",
                "11310115002491234X",
                "全区季度地区生产总值",
                "电子表格",
                name,
                kind,
                "有条件共享",
                "用于经济运行分析",
                "接口、电子文件",
                "不予开放",
                "季度",
                date(2023, 4, 20),
                "",
            ]
        )
    corpus.add(
        Case(
            "guide_headers",
            "指南目录.xlsx",
            xlsx(Book(guide_rows)),
            "the 指南's header names, no item codes, a 统一社会信用代码 as 提供方代码",
            created=("TJ-GDP-Q",),
            warnings=("TJ-GDP-Q-01", "发布日期", "信息资源格式", "11310115002491234X"),
        )
    )

    # -- the 指南 template's two header rows: groups (信息项信息, 共享属性) merged above the names
    top: list[Cell] = ["信息资源分类", "信息资源名称", "信息资源代码", "信息资源提供方"]
    top += ["信息项信息", None, "共享属性", None, None, "开放属性", "更新周期"]
    sub: list[Cell] = [None, None, None, None, "信息项名称", "数据类型", "共享类型", "共享条件"]
    sub += ["共享方式", None, None]
    body = [
        [
            "部门",
            "工业用电量",
            "FG-GYYD-M",
            "区发展和改革委员会",
            name,
            "数值型",
            "无条件共享",
            "",
            "接口",
            "不予开放",
            "月度",
        ]
        for name in ("工业用电量", "全社会用电量")
    ]
    merged = ("A1:A2", "B1:B2", "C1:C2", "D1:D2", "E1:F1", "G1:I1", "J1:J2", "K1:K2")
    corpus.add(
        Case(
            "guide_two_header_rows",
            "指南模板.xlsx",
            xlsx(Book([top, sub, *body], merged=merged)),
            "the 指南 template's group row (信息项信息, 共享属性) merged above the header",
            created=("FG-GYYD-M",),
            warnings=("FG-GYYD-M-01",),
        )
    )

    # -- codes in the national 前段码/后段码 form
    national = dataset("330106/0001", "常住人口", items="RK0001")
    corpus.add(
        Case(
            "national_code",
            "国家编码.csv",
            text([HEADER, *national]),
            "信息资源代码 written as 前段码/后段码",
            created=("330106-0001",),
        )
    )

    # -- 敏感级别 that differs between the items of one dataset
    sensitive = [*HEADER, "敏感级别"]
    levels = ["不敏感", "较敏感", "L2"]
    rows = [
        [*row, level] for row, level in zip(dataset("TJ-RKJG-Y", "人口结构"), levels, strict=True)
    ]
    corpus.add(
        Case(
            "per_item_sensitivity",
            "敏感级别.csv",
            text([sensitive, *rows]),
            "a 敏感级别 per item under the dataset's column",
            created=("TJ-RKJG-Y",),
            warnings=("L1",),
        )
    )

    # -- everyday words for cycles and types
    words: list[Sequence[Cell]] = [HEADER]
    for code, cycle, kind in (
        ("TJ-W-M", "月度", "数字"),
        ("TJ-W-Q", "季度", "文本"),
        ("TJ-W-Y", "年度", "整数"),
        ("TJ-W-H", "半年", "日期"),
        ("TJ-W-S", "每半月", "字符串"),
    ):
        row: list[Cell] = [code, f"日常用语{cycle}", "区统计局", "部门", f"{code}-1", "指标", kind]
        words.append([*row, "无条件共享", "", cycle])
    corpus.add(
        Case(
            "everyday_words",
            "日常用语.csv",
            text(words),
            "月度/季度/年度/半年/每半月 as cycles, 数字/文本 as types",
            created=("TJ-W-M", "TJ-W-Q", "TJ-W-Y", "TJ-W-H", "TJ-W-S"),
        )
    )

    # -- a merged title row, 填报单位/填报日期 and blank rows above the header
    titled: list[Sequence[Cell]] = [
        ["XX区政务信息资源目录（2024年版）", *[None] * 9],
        ["填报单位：区统计局", None, None, None, None, "填报日期：2024年3月1日"],
        [],
        [],
        HEADER,
        *dataset("TJ-BT-M", "标题行下的目录"),
    ]
    corpus.add(
        Case(
            "title_rows",
            "带标题.xlsx",
            xlsx(Book(titled, merged=("A1:J1",))),
            "a merged title row, 填报单位/填报日期 and blank rows above the header",
            created=("TJ-BT-M",),
            warnings=("row 1", "row 2"),
        )
    )

    # -- 序号, 备注 and 更新日期 columns
    extra = ["序号", *HEADER, "更新日期", "备注"]
    numbered = [
        [n, *row, date(2024, 3, 1), "新增" if n == 1 else None]
        for n, row in enumerate(dataset("TJ-XH-M", "带序号的目录"), start=1)
    ]
    corpus.add(
        Case(
            "serial_and_remarks",
            "序号备注.xlsx",
            xlsx(Book([extra, *numbered])),
            "a 序号 column, 备注 and 更新日期 columns",
            created=("TJ-XH-M",),
            warnings=("column 1 (序号)", "(更新日期)", "(备注)"),
        )
    )

    # -- `*` required markers and line breaks in headers
    marked = ["*资源代码", "资源\n名称", "提供单位*", "＊资源分类", "信息项\r\n编码"]
    marked += ["信息项 名称", "数据类型", "共享\n类型", "共享条件", "* 更新周期"]
    corpus.add(
        Case(
            "required_markers",
            "必填标记.xlsx",
            xlsx(Book([marked, *dataset("TJ-BJ-M", "必填标记")])),
            "`*` required markers, spaces and line breaks in headers",
            created=("TJ-BJ-M",),
        )
    )

    # -- an instructions sheet placed first
    instructions = Book(
        [
            ["填表说明"],
            ["1. 每个信息项一行。"],
            ["2. 共享类型填写无条件共享、有条件共享或不予共享。"],
        ],
        name="填表说明",
    )
    corpus.add(
        Case(
            "instructions_first",
            "说明在前.xlsx",
            xlsx(instructions, Book([HEADER, *dataset("TJ-SM-M", "说明页之后")])),
            "an instructions sheet placed before the 目录 sheet",
            created=("TJ-SM-M",),
        )
    )

    # -- vertically merged 资源代码/资源名称 cells
    merged_rows: list[Sequence[Cell]] = [HEADER]
    for n, row in enumerate(dataset("TJ-HB-M", "合并单元格") + dataset("TJ-HB-Q", "第二个")):
        merged_rows.append([None, None, *row[2:]] if n % 3 else row)
    corpus.add(
        Case(
            "merged_dataset_cells",
            "合并单元格.xlsx",
            xlsx(Book(merged_rows, merged=("A2:A4", "B2:B4", "A5:A7", "B5:B7"))),
            "资源代码/资源名称 merged down the dataset's rows",
            created=("TJ-HB-M", "TJ-HB-Q"),
        )
    )

    # -- the same sheet saved as CSV: the merged value only on each dataset's first row
    corpus.add(
        Case(
            "merged_cells_saved_as_csv",
            "合并单元格.csv",
            text(merged_rows),
            "a merged sheet saved as CSV, codes on each dataset's first row only",
            created=("TJ-HB-M", "TJ-HB-Q"),
        )
    )

    # -- a footer note
    footer: list[Sequence[Cell]] = [HEADER, *dataset("TJ-BZ-M", "带表尾")]
    footer += [[], ["注：1. 共享类型按《政务信息资源共享管理暂行办法》填写。"]]
    footer += [["2. 更新周期填写实时、每日、每周、每月、每季度、每年。"]]
    footer += [["填表人：张三", None, "审核人：李四", None, "联系电话：12345678"]]
    corpus.add(
        Case(
            "footer_note",
            "表尾注释.xlsx",
            xlsx(Book(footer)),
            "a footer note and 填表人/审核人 row below the table",
            created=("TJ-BZ-M",),
            warnings=("footer note",),
        )
    )

    # -- 提供单位 as short names and codes in any case
    short = [
        *dataset("TJ-JC-M", "简称统计局", owner="统计局"),
        *dataset("FG-JC-M", "简称发改委", owner="发改委"),
        *dataset("HR-JC-M", "代码大写", owner="HRSS"),
    ]
    corpus.add(
        Case(
            "short_department_names",
            "单位简称.csv",
            text([HEADER, *short]),
            "提供单位 as 统计局, 发改委 and an upper-case code",
            created=("TJ-JC-M", "FG-JC-M", "HR-JC-M"),
            warnings=("resolved 统计局 as 区统计局 (stats)", "区发展和改革委员会 (drc)"),
        )
    )

    corpus.add(
        Case(
            "department_near_miss",
            "单位错字.csv",
            text([HEADER, *dataset("TJ-CZ-M", "错字", owner="区统记局")]),
            "提供单位 with a wrong character",
            refused_at="row 2, 提供单位",
            refused_with="did you mean 区统计局 (stats)?",
        )
    )

    corpus.add(
        Case(
            "department_ambiguous",
            "单位不明.csv",
            text([HEADER, *dataset("TJ-WYH-M", "含糊", owner="委员会")]),
            "提供单位 naming what several departments' names hold",
            refused_at="row 2, 提供单位",
            refused_with="write the department's full name or code",
        )
    )

    # -- .xls from an old machine, a title row merged above
    corpus.add(
        Case(
            "legacy_xls",
            "目录.xls",
            xls(
                [
                    [*HEADER, "数据起始日期"],
                    *[[*r, date(2015, 1, 1)] for r in dataset("TJ-XLS-M", "老格式")],
                ],
                title="区统计局信息资源目录",
            ),
            "a legacy .xls with a merged title row and a date cell",
            created=("TJ-XLS-M",),
        )
    )

    # -- tab-separated text (Excel's 文本文件(制表符分隔), GBK) and UTF-16 "Unicode 文本"
    corpus.add(
        Case(
            "tab_separated_gbk",
            "目录.txt",
            text([HEADER, *dataset("TJ-TAB-M", "制表符分隔")], encoding="gbk", separator="\t"),
            "tab-separated text saved by Excel on Chinese Windows (GBK)",
            created=("TJ-TAB-M",),
        )
    )
    corpus.add(
        Case(
            "unicode_text",
            "目录_Unicode.txt",
            text([HEADER, *dataset("TJ-U16-M", "Unicode文本")], encoding="utf-16", separator="\t"),
            "Excel's Unicode 文本: UTF-16 with BOM, tab-separated",
            created=("TJ-U16-M",),
        )
    )
    corpus.add(
        Case(
            "gbk_csv_with_title",
            "目录_GBK.csv",
            text(
                [["区统计局政务数据资源目录"], [], HEADER, *dataset("TJ-GBK-M", "GBK编码")],
                encoding="gbk",
            ),
            "CSV saved as ANSI (GBK) with a title row",
            created=("TJ-GBK-M",),
        )
    )

    # -- an error below blank rows is named by the row the sheet shows (row 12, not row 10)
    gapped: list[Sequence[Cell]] = [["区统计局目录"], [], HEADER, *dataset("TJ-KH-M", "空行")]
    gapped += [[], *dataset("TJ-KH-Q", "空行之后", cycle="季度")]
    gapped += [[], [*dataset("TJ-KH-Y", "错行")[0][:9], "每两周"]]
    corpus.add(
        Case(
            "error_below_blank_rows",
            "空行.csv",
            text(gapped),
            "blank rows inside the table, then a wrong cycle on sheet row 12",
            refused_at="row 12, 更新周期",
            refused_with="monthly (每月)",
        )
    )

    # -- dates as Excel date cells, serial numbers and written forms
    dated = [*HEADER, "数据起始日期", "数据截止日期"]
    spans: list[tuple[Cell, Cell]] = [
        (datetime(2020, 1, 1), "2024年12月31日"),
        ("2021/1/1", "2023-12-31"),
        (44197, "2022.06.30"),
    ]
    date_rows: list[list[Cell]] = []
    for n, (start, end) in enumerate(spans):
        code = f"TJ-RQ{n}-Y"
        date_rows.append([code, "日期", "区统计局", "部门", f"{code}-1", "指标", "数值型"])
        date_rows[-1] += ["无条件共享", "", "每年", start, end]
    corpus.add(
        Case(
            "excel_dates",
            "日期.xlsx",
            xlsx(Book([dated, *date_rows])),
            "Excel date cells, a serial number, yyyy/m/d, yyyy-mm-dd and yyyy年m月d日",
            created=("TJ-RQ0-Y", "TJ-RQ1-Y", "TJ-RQ2-Y"),
        )
    )
    corpus.add(
        Case(
            "impossible_date",
            "日期错误.csv",
            text([dated, [*dataset("TJ-RQX-Y", "日期错误")[0], "2024年13月1日", ""]]),
            "a date that does not exist",
            refused_at="row 2, 数据起始日期",
            refused_with="2024年1月31日",
        )
    )

    # -- full-width characters typed with a Chinese input method
    wide = [
        [
            "ＴＪ－ＱＪ－Ｍ",
            "全角",
            "区统计局",
            "部门",
            "ＴＪ－ＱＪ－１",
            "全角指标",
            "整数型",
            "无条件共享",
            "",
            "每\u3000月",
            "Ｌ２",
            "ＳＴＡＴＳ",
        ],
        [
            "ＴＪ－ＱＪ－Ｍ",
            "全角",
            "区统计局",
            "部门",
            "ＴＪ－ＱＪ－２",
            "全角比率",
            "数值型",
            "无条件共享",
            "",
            "每\u3000月",
            "Ｌ２",
            "ＳＴＡＴＳ",
        ],
    ]
    corpus.add(
        Case(
            "full_width",
            "全角.csv",
            text([[*HEADER, "敏感级别", "提供单位代码"], *wide]),
            "full-width letters, digits and spaces in codes and words",
            created=("TJ-QJ-M",),
        )
    )

    # -- Excel booleans: TRUE/FALSE cells, 1/0, √ and ×
    flags = [*HEADER, "是否主键", "是否可为空", "是否已归集"]
    keys: list[Cell] = [True, False, 0]
    nullables: list[Cell] = [False, "×", 1]
    flag_rows: list[Sequence[Cell]] = [
        [*row, key, nullable, "√"]
        for row, key, nullable in zip(dataset("TJ-BOOL-M", "布尔值"), keys, nullables, strict=True)
    ]
    corpus.add(
        Case(
            "excel_booleans",
            "布尔值.xlsx",
            xlsx(Book([flags, *flag_rows])),
            "TRUE/FALSE cells, 1/0, √ and × in yes/no columns",
            created=("TJ-BOOL-M",),
        )
    )

    # -- English headers, as a system export writes them
    english = ["resource_code", "title", "provider", "category", "item_code", "item_name"]
    english += ["data_type", "share_type", "share_condition", "frequency"]
    corpus.add(
        Case(
            "english_headers",
            "catalog.csv",
            text([english, *dataset("TJ-EN-M", "English")]),
            "English headers from a system export",
            created=("TJ-EN-M",),
        )
    )

    # -- a mistyped header: refused, the column it was meant to be named
    typo = [*HEADER[:9], "更新周其"]
    corpus.add(
        Case(
            "mistyped_header",
            "表头错字.csv",
            text([typo, *dataset("TJ-CT-M", "表头错字")]),
            "a required header mistyped (更新周其)",
            refused_at="row 1",
            refused_with="is column 10 ('更新周其') meant to be 更新周期?",
        )
    )

    return corpus.cases
