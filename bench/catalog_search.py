"""Benchmark catalog search through HTTP: issue 17's two search goals, failing when one is missed.

    python bench/catalog_search.py [--database-url URL] [--datasets 20000] [--items 300000]
                                   [--small-datasets N] [--requests 60] [--quick]

Without --database-url each catalog goes to a temporary SQLite file. With a PostgreSQL URL that
URL is used only as an administrator: scratch databases are created next to it, migrated, seeded
and dropped at the end.

Seeding is fast but genuine: about 40 departments and an admin account through the services;
datasets and items as transient ORM objects whose derived columns (tokens, deadlines) are computed
by the service's own `_refresh_derived`, in worker processes, then bulk-inserted with SQLAlchemy
core (plus the FTS5 twins on SQLite; PostgreSQL fills `search_vector` itself). Two catalogs are
seeded: the full size, and a small one (a tenth by default) to measure growth against.

Three uvicorn processes serve on localhost:

* real      `uvicorn broker.app:create_app --factory` on the full catalog;
* small     the same on the small catalog;
* baseline  this file in `--serve-baseline FILE PORT` mode: a bare Starlette endpoint answering
            each benchmark URL with the bytes the real server returned for it, captured first.

Each query is requested sequentially with httpx, visiting the three servers in an order that
rotates every request, after a warm-up; the whole set runs three times. The goals are ratios of
pooled p95 latencies over all queries, per repeat and as the median of the three: full / baseline
<= 2 and full / small <= 1.5. The exit status is 1 when either is missed. `--quick` is the CI
smoke size (2,000 vs 200 datasets). Benchmarks never run in the test suite.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlencode

import httpx
import uvicorn
from sqlalchemy import Engine, Table, create_engine, event, insert, text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker import migrations
from broker.accounts import service as accounts
from broker.accounts.schemas import AccountCreate
from broker.auth import tokens
from broker.auth.models import AccountKind, Role
from broker.config import Settings
from broker.db import make_engine, make_session_factory
from catalog.datasets.freshness import CYCLE_LENGTH
from catalog.datasets.models import DataItem, Dataset
from catalog.datasets.service import _refresh_derived
from catalog.departments import service as departments
from catalog.departments.models import Department, DepartmentKind
from catalog.departments.schemas import DepartmentCreate
from catalog.text.index import FTS_TABLES
from catalog.vocab import (
    BaseKind,
    Category,
    DataGrade,
    DatasetStatus,
    DataType,
    OpenType,
    Sensitivity,
    ShareMethod,
    ShareType,
    UpdateCycle,
    label,
)
from servers import (
    BenchError,
    Server,
    exit_status,
    percentile,
    scratch_database,
    start_server,
    sync_url,
)

SEED = 20_261_129
CHUNK_DATASETS = 250
REQUEST_TIMEOUT_SECONDS = 120.0
REMINT_AFTER_SECONDS = 15 * 60
MIN_SAMPLES = 20
ADMIN_ACCOUNT = "bench-admin"
PLATFORM = "platform"

# --- realistic vocabulary ----------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    subjects: tuple[str, ...]  # what a dataset title is about
    indicators: tuple[tuple[str, str | None], ...]  # item (name, unit)
    english: tuple[str, ...]  # phrases some descriptions carry
    base_kind: BaseKind | None = None  # base data (基础数据) of this kind, when it is


def topic(subjects: str, indicators: str, english: str, base: BaseKind | None = None) -> Topic:
    """A topic from compact text: subjects and `name:unit` indicators space-separated."""
    pairs = [
        (word.partition(":")[0], word.partition(":")[2] or None) for word in indicators.split()
    ]
    return Topic(tuple(subjects.split()), tuple(pairs), tuple(english.split(";")), base)


# (title subjects, item `name:unit`s, English phrases separated by ';', base kind)
TOPICS: dict[str, Topic] = {
    "统计": topic(
        "统计调查基本单位名录 主要经济指标快报 地区生产总值核算 统计年鉴指标",
        "地区生产总值:亿元 地区生产总值增速:% 第三产业增加值:亿元 统计调查单位数:个 "
        "从业人员期末人数:人",
        "GDP quarterly accounts by industry;statistical yearbook indicators",
    ),
    "工业": topic(
        "规模以上工业企业主要经济指标 工业总产值 工业企业能耗 工业园区运行监测",
        "规模以上工业总产值:亿元 工业增加值:亿元 工业营业收入:亿元 工业利润总额:亿元 "
        "工业企业数:个 综合能源消费量:吨标准煤",
        "industrial output of enterprises above designated size;industrial energy use",
    ),
    "消费": topic(
        "社会消费品零售总额 限额以上批发零售业销售额 住宿餐饮业营业额 消费券核销",
        "社会消费品零售总额:亿元 网络零售额:亿元 餐饮收入:亿元 消费券核销金额:万元 "
        "限额以上单位数:个",
        "retail sales of consumer goods;consumer spending",
    ),
    "投资": topic(
        "固定资产投资 重大项目投资进度 招商引资项目 外商直接投资",
        "固定资产投资额:亿元 项目计划总投资:亿元 实际到位资金:万元 外商直接投资额:万美元 项目编号",
        "fixed asset investment;investment projects in progress",
    ),
    "税收": topic(
        "税收收入 企业纳税明细 分行业税收 增值税发票开具 房产税征收",
        "税收收入:亿元 增值税收入:亿元 企业所得税:亿元 个人所得税:亿元 纳税人识别号 "
        "应纳税额:元 已缴税额:元",
        "monthly tax revenue by industry;tax revenue and invoices",
    ),
    "财政": topic(
        "一般公共预算收入 财政支出 政府采购 专项资金拨付",
        "一般公共预算收入:亿元 一般公共预算支出:亿元 专项资金金额:万元 采购金额:万元 预算科目编码",
        "fiscal revenue and expenditure;public budget execution",
    ),
    "人口": topic(
        "常住人口 户籍人口 实有人口 流动人口登记 人口出生",
        "常住人口数:人 户籍人口数:人 出生人口数:人 死亡人口数:人 身份证件号码 姓名 户籍地址",
        "resident population register;population by street",
        BaseKind.population,
    ),
    "房屋": topic(
        "房屋基础信息 商品房销售 住房租赁备案 房屋安全检查 人房数据",
        "房屋编号 建筑面积:平方米 商品房销售面积:万平方米 租赁合同编号 房屋地址 房屋用途",
        "housing register;housing sales and rentals",
        BaseKind.housing,
    ),
    "用电": topic(
        "全社会用电量 工业用电 企业用电监测 居民用电",
        "全社会用电量:万千瓦时 工业用电量:万千瓦时 居民用电量:万千瓦时 用电户号 最大负荷:千瓦",
        "electricity consumption;power usage of enterprises",
    ),
    "用水": topic(
        "用水量统计 供水管网 排水许可 河道水质",
        "用水量:万立方米 供水户数:户 水质达标率:% 排水户编号",
        "water consumption",
    ),
    "燃气": topic(
        "燃气用户 燃气用量 燃气安全检查", "燃气用量:万立方米 燃气用户数:户 燃气户号", "gas usage"
    ),
    "就业": topic(
        "城镇新增就业 登记失业人员 职业技能培训 招聘岗位",
        "城镇新增就业人数:人 城镇登记失业率:% 培训人次:人次 岗位数:个",
        "employment and unemployment register",
    ),
    "社保": topic(
        "社会保险参保 养老保险待遇发放 医疗保险结算",
        "参保人数:人 缴费基数:元 养老金发放金额:万元 社保卡号",
        "social insurance contributions",
    ),
    "企业": topic(
        "企业基本信息 市场主体登记 重点企业名录 企业经营异常名录 营业执照",
        "统一社会信用代码 企业名称 法定代表人 注册资本:万元 成立日期 登记机关 经营范围",
        "enterprise register;business licences of market entities",
        BaseKind.legal_entity,
    ),
    "信用": topic(
        "公共信用信息 失信被执行人 行政处罚信息 信用承诺",
        "信用等级 处罚决定书文号 处罚金额:元 失信原因",
        "public credit records",
        BaseKind.credit,
    ),
    "医疗": topic(
        "医疗机构执业登记 门急诊人次 出生医学证明 传染病报告",
        "门急诊人次:人次 床位数:张 医疗机构名称 执业许可证号",
        "hospital visits",
    ),
    "教育": topic(
        "学校基本情况 在校学生 教师队伍 入学报名",
        "在校学生数:人 专任教师数:人 学校名称 学籍号",
        "school enrolment",
    ),
    "养老": topic(
        "养老机构 老年人补贴发放 社区养老服务",
        "养老床位数:张 老年人数:人 补贴金额:元",
        "elderly care services",
    ),
    "交通": topic(
        "道路交通流量 公共停车场 公交客流 交通事故",
        "日均车流量:辆 停车泊位数:个 公交客流量:人次 车牌号码",
        "traffic flow;public parking",
    ),
    "环境": topic(
        "空气质量监测 重点污染源排放 噪声监测 垃圾分类",
        "PM2.5浓度:微克/立方米 空气质量优良天数:天 化学需氧量排放量:吨 排污许可证编号",
        "air quality;pollutant emissions",
    ),
    "土地": topic(
        "土地出让 建设用地审批 不动产登记 规划许可 地形图",
        "出让面积:公顷 成交价款:万元 不动产单元号 地块编号",
        "land transfers;map of land parcels",
        BaseKind.map,
    ),
    "应急": topic(
        "安全生产检查 应急物资储备 突发事件 隐患排查",
        "检查企业数:个 隐患数:项 物资数量:件 事件编号",
        "emergency management",
    ),
    "城管": topic(
        "城市管理案件 市容环境 违法建筑 网格事件",
        "案件数:件 结案率:% 网格编号 案件编号",
        "city management cases",
    ),
    "旅游": topic(
        "旅游接待 A级景区 文化场馆", "接待游客人次:万人次 旅游收入:亿元 景区名称", "tourism revenue"
    ),
    "科技": topic(
        "高新技术企业 科技项目 专利授权",
        "专利授权数:件 研发投入:万元 项目名称",
        "high-tech enterprises",
    ),
    "金融": topic(
        "金融机构存贷款 普惠金融 上市企业",
        "存款余额:亿元 贷款余额:亿元 机构名称",
        "bank deposits and loans",
    ),
    "农业": topic(
        "农产品产量 耕地保护 农业补贴", "粮食产量:吨 耕地面积:亩 补贴对象", "agriculture output"
    ),
    "证照": topic(
        "电子证照 行政许可 政务服务办件",
        "证照编号 证照类型 办件编号 办结时间",
        "electronic licences",
        BaseKind.license,
    ),
}
KEY_ITEMS = topic(
    "", "行政区划代码 街道名称 统计期 数据更新时间 地址 经度:度 纬度:度 序号 备注", ""
).indicators


@dataclass(frozen=True)
class Bureau:
    code: str
    name: str
    kind: DepartmentKind
    prefix: str
    topics: tuple[str, ...]
    weight: int = 10


BUREAU, STREET, ENTERPRISE = DepartmentKind.bureau, DepartmentKind.street, DepartmentKind.enterprise
BUREAUS: tuple[Bureau, ...] = (
    Bureau(
        PLATFORM, "区城市运行管理中心", DepartmentKind.platform, "CY", ("人口", "城管", "证照"), 6
    ),
    Bureau("big-data", "区大数据中心", BUREAU, "DSJ", ("人口", "房屋", "企业", "证照", "信用"), 12),
    Bureau("stats", "区统计局", BUREAU, "TJ", ("统计", "工业", "消费", "投资"), 20),
    Bureau("tax", "区税务局", BUREAU, "SW", ("税收", "企业"), 20),
    Bureau("finance", "区财政局", BUREAU, "CZ", ("财政", "投资")),
    Bureau("drc", "区发展和改革委员会", BUREAU, "FG", ("投资", "信用", "用电")),
    Bureau("commerce", "区商务委员会", BUREAU, "SWW", ("消费", "投资", "企业")),
    Bureau("hrss", "区人力资源和社会保障局", BUREAU, "RS", ("就业", "社保"), 14),
    Bureau("civil", "区民政局", BUREAU, "MZ", ("养老", "人口")),
    Bureau("health", "区卫生健康委员会", BUREAU, "WJ", ("医疗", "人口"), 14),
    Bureau("education", "区教育局", BUREAU, "JY", ("教育",)),
    Bureau("housing", "区住房保障和房屋管理局", BUREAU, "FGJ", ("房屋",), 14),
    Bureau("planning", "区规划和自然资源局", BUREAU, "GHZ", ("土地", "房屋")),
    Bureau("ecology", "区生态环境局", BUREAU, "STHJ", ("环境",)),
    Bureau("market", "区市场监督管理局", BUREAU, "SJ", ("企业", "信用", "证照"), 18),
    Bureau("transport", "区交通委员会", BUREAU, "JT", ("交通",)),
    Bureau("police", "区公安分局", BUREAU, "GA", ("人口", "交通"), 14),
    Bureau("emergency", "区应急管理局", BUREAU, "YJ", ("应急", "企业")),
    Bureau("fire", "区消防救援支队", BUREAU, "XF", ("应急", "房屋"), 6),
    Bureau("urban", "区城市管理和综合执法局", BUREAU, "CG", ("城管", "环境")),
    Bureau("greening", "区绿化和市容管理局", BUREAU, "LH", ("环境", "城管"), 6),
    Bureau("water", "区水务局", BUREAU, "SWJ", ("用水", "环境")),
    Bureau("culture", "区文化和旅游局", BUREAU, "WL", ("旅游",), 6),
    Bureau("sports", "区体育局", BUREAU, "TY", ("旅游", "教育"), 4),
    Bureau("science", "区科学技术委员会", BUREAU, "KW", ("科技", "企业")),
    Bureau("jinrong", "区金融工作局", BUREAU, "JR", ("金融", "企业"), 6),
    Bureau("agriculture", "区农业农村委员会", BUREAU, "NY", ("农业", "土地"), 6),
    Bureau("veterans", "区退役军人事务局", BUREAU, "TYJR", ("就业", "养老"), 4),
    Bureau("justice", "区司法局", BUREAU, "SF", ("信用",), 4),
    Bureau("audit", "区审计局", BUREAU, "SJJ", ("财政",), 4),
    Bureau("medical-insurance", "区医疗保障局", BUREAU, "YB", ("医疗", "社保")),
    Bureau("housing-fund", "区住房公积金管理中心", BUREAU, "GJJ", ("房屋", "社保"), 6),
    Bureau("economy", "区经济委员会", BUREAU, "JW", ("工业", "用电", "投资")),
    Bureau("power", "国网某区供电公司", ENTERPRISE, "GD", ("用电",), 8),
    Bureau("gas", "区燃气有限公司", ENTERPRISE, "RQ", ("燃气",), 4),
    Bureau("water-supply", "区自来水有限公司", ENTERPRISE, "ZLS", ("用水",), 4),
    Bureau("st-chengguan", "城关街道办事处", STREET, "JD01", ("人口", "城管", "养老"), 5),
    Bureau("st-binjiang", "滨江街道办事处", STREET, "JD02", ("人口", "房屋", "城管"), 5),
    Bureau("st-xinhe", "新河街道办事处", STREET, "JD03", ("人口", "就业"), 5),
    Bureau("st-dongyuan", "东苑街道办事处", STREET, "JD04", ("人口", "养老"), 5),
)
STREETS = tuple(b.name for b in BUREAUS if b.kind == STREET)

SCOPES = ("", "", "", "全区", "各街道", "重点", "辖区")
SUFFIXES: dict[UpdateCycle, tuple[str, ...]] = {
    UpdateCycle.realtime: ("实时数据", "实时监测"),
    UpdateCycle.daily: ("日报", "每日明细", "明细"),
    UpdateCycle.weekly: ("周报",),
    UpdateCycle.dekad: ("旬报",),
    UpdateCycle.monthly: ("月报", "月度统计", "月度数据"),
    UpdateCycle.quarterly: ("季报", "季度数据"),
    UpdateCycle.semiannual: ("半年报",),
    UpdateCycle.annual: ("年报", "年度统计"),
    UpdateCycle.irregular: ("台账", "名录", "信息", "清单"),
}
CYCLE_WEIGHTS: dict[UpdateCycle, int] = {
    UpdateCycle.realtime: 5,
    UpdateCycle.daily: 12,
    UpdateCycle.weekly: 6,
    UpdateCycle.dekad: 2,
    UpdateCycle.monthly: 30,
    UpdateCycle.quarterly: 12,
    UpdateCycle.semiannual: 4,
    UpdateCycle.annual: 15,
    UpdateCycle.irregular: 14,
}
LAG_DAYS: dict[UpdateCycle, tuple[int, int]] = {
    UpdateCycle.realtime: (0, 0),
    UpdateCycle.daily: (0, 2),
    UpdateCycle.weekly: (1, 5),
    UpdateCycle.dekad: (1, 5),
    UpdateCycle.monthly: (5, 25),
    UpdateCycle.quarterly: (15, 45),
    UpdateCycle.semiannual: (15, 60),
    UpdateCycle.annual: (30, 120),
    UpdateCycle.irregular: (0, 0),
}
DIMENSIONS = ("街道", "行业", "企业规模", "月份", "登记注册类型", "社区", "年龄段")
SHARE_CONDITIONS = (
    "仅用于经济运行监测，不得向第三方提供",
    "仅限政务服务办理使用",
    "需经数据提供部门审核同意",
    "仅用于统计分析，结果不得含个人信息",
)
LEGAL_BASES = (
    "《中华人民共和国税收征收管理法》第八条",
    "《中华人民共和国个人信息保护法》第十三条",
    "《中华人民共和国统计法》第二十五条",
    "涉及国家秘密，依据《中华人民共和国保守国家秘密法》",
)
COUNT_UNITS = {"人", "个", "件", "户", "张", "人次", "辆", "天", "项", "万人次"}
PERSONAL = {"身份证件号码", "姓名", "社保卡号", "学籍号", "车牌号码"}
IDENTIFIERS = {
    "统一社会信用代码",
    "身份证件号码",
    "房屋编号",
    "纳税人识别号",
    "不动产单元号",
    "证照编号",
}


def pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# --- seeding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    id: uuid.UUID
    code: str
    name: str
    bureau: Bureau


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    count: int
    total_datasets: int
    total_items: int
    now: datetime
    owners: tuple[Owner, ...]


@dataclass
class ChunkRows:
    datasets: list[dict[str, Any]]
    items: list[dict[str, Any]]
    seconds: float


def data_type_for(name: str, unit: str | None) -> DataType:
    if unit is None:
        if name.endswith(("日期", "统计期")):
            return DataType.date
        if name.endswith("时间"):
            return DataType.datetime
        if name == "序号":
            return DataType.integer
        return DataType.string
    return DataType.integer if unit in COUNT_UNITS else DataType.decimal


def item_names(
    rng: random.Random, topics: Sequence[Topic], count: int
) -> list[tuple[str, str | None]]:
    """`count` distinct item names: a few keys, then the topics' indicators and their variants."""
    chosen: dict[str, str | None] = {}
    for name, unit in rng.sample(KEY_ITEMS, k=min(len(KEY_ITEMS), rng.randint(2, 4))):
        chosen.setdefault(name, unit)
    pool = [pair for topic in topics for pair in topic.indicators]
    for _attempt in range(count * 20):
        if len(chosen) >= count:
            break
        name, unit = rng.choice(pool)
        if unit is not None and unit not in COUNT_UNITS and rng.random() < 0.5:
            name, unit = rng.choice(
                [(f"{name}同比增速", "%"), (f"累计{name}", unit), (f"{name}环比", "%")]
            )
        chosen.setdefault(name, unit)
    extra = 1
    while len(chosen) < count:
        name, unit = rng.choice(pool)
        chosen.setdefault(f"{name}（{extra}）", unit)
        extra += 1
    return list(chosen.items())[:count]


def make_dataset(
    rng: random.Random,
    number: int,
    chunk: Chunk,
    items: int,
    departments: dict[str, Department],
) -> Dataset:
    owner = rng.choices(chunk.owners, weights=[o.bureau.weight for o in chunk.owners])[0]
    bureau = owner.bureau
    topic_names = rng.sample(bureau.topics, k=min(len(bureau.topics), rng.choice((1, 1, 2))))
    topics = [TOPICS[name] for name in topic_names]
    main = topics[0]
    cycle: UpdateCycle = pick(rng, CYCLE_WEIGHTS)
    subject = rng.choice(main.subjects)
    title = f"{rng.choice(SCOPES)}{subject}{rng.choice(SUFFIXES[cycle])}"

    category, base_kind = Category.departmental, None
    if main.base_kind is not None and rng.random() < 0.15:
        category, base_kind = Category.base, main.base_kind
    elif rng.random() < 0.15:
        category = Category.thematic
    grade = pick(rng, {DataGrade.general: 80, DataGrade.important: 18, DataGrade.core: 2})
    share: ShareType = pick(
        rng, {ShareType.unconditional: 55, ShareType.conditional: 35, ShareType.none: 10}
    )
    if grade == DataGrade.core:
        share = ShareType.none
    open_type: OpenType = pick(
        rng, {OpenType.open: 20, OpenType.conditional_open: 15, OpenType.not_open: 65}
    )
    if share == ShareType.none:
        open_type = OpenType.not_open
    sensitivity: Sensitivity = pick(
        rng, {Sensitivity.L1: 45, Sensitivity.L2: 30, Sensitivity.L3: 17, Sensitivity.L4: 8}
    )
    status: DatasetStatus = pick(
        rng, {DatasetStatus.published: 90, DatasetStatus.draft: 7, DatasetStatus.deprecated: 3}
    )
    lag = rng.randint(*LAG_DAYS[cycle])
    now = chunk.now
    length = CYCLE_LENGTH[cycle]
    last_updated: datetime | None
    if rng.random() < 0.03:
        last_updated = None
    elif length is None:
        last_updated = now - timedelta(days=rng.uniform(0, 700))
    else:
        window = (2.5 * (length + timedelta(days=lag))).total_seconds()
        last_updated = now - timedelta(seconds=rng.uniform(0, window))
    created = now - timedelta(days=rng.uniform(30, 1500))
    updated = created + (now - created) * rng.random()
    start = date(rng.randint(2005, 2023), 1, 1)
    end = None if rng.random() < 0.6 else date(rng.randint(start.year, 2026), 12, 31)

    names = item_names(rng, topics, items)
    # An identifier, when the dataset has one, comes first and is the key.
    names.sort(key=lambda pair: pair[0] not in IDENTIFIERS)
    description = (
        f"{rng.choice(('全区', '本区', '辖区内'))}{subject}数据，包含"
        f"{'、'.join(n for n, _u in names[-3:])}等{len(names)}项指标，按{rng.choice(DIMENSIONS)}"
        f"汇总，{label(cycle)}更新，由{owner.name}负责维护。"
    )
    if rng.random() < 0.25:
        description += f" {rng.choice(main.english).capitalize()}."
    code = f"{bureau.prefix}-{number:05d}-{cycle.value[0].upper()}"
    dataset_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    department = departments[owner.code]
    methods = rng.sample(list(ShareMethod), k=rng.randint(1, 3))
    dataset = Dataset(
        id=dataset_id,
        code=code,
        title=title,
        description=description,
        owner_department_id=owner.id,
        owner=department,
        category=category,
        class_code=f"{rng.choice('ABCDE')}{rng.randint(1, 20):02d}{rng.randint(1, 50):03d}",
        base_kind=base_kind,
        share_type=share,
        share_condition=rng.choice(SHARE_CONDITIONS) if share == ShareType.conditional else None,
        legal_basis=rng.choice(LEGAL_BASES) if share == ShareType.none else None,
        open_type=open_type,
        data_grade=grade,
        sensitivity=sensitivity,
        update_cycle=cycle,
        publication_lag_days=lag,
        share_methods=[m.value for m in methods],
        temporal_start=start,
        temporal_end=end,
        spatial_coverage=rng.choice(STREETS) if rng.random() < 0.2 else "全区",
        aggregated=rng.random() < 0.4,
        status=status,
        last_updated_at=last_updated,
        version=1,
        created_at=created,
        updated_at=updated,
        items=[],
    )
    for position, (name, unit) in enumerate(names):
        data_type = data_type_for(name, unit)
        is_key = position == 0 and name in IDENTIFIERS
        constraints: dict[str, Any] = {}
        if data_type in (DataType.integer, DataType.decimal) and rng.random() < 0.3:
            constraints = {"minimum": 0}
        raised = name in PERSONAL and sensitivity.level < Sensitivity.L4.level
        dataset.items.append(
            DataItem(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                dataset_id=dataset_id,
                position=position,
                code=f"{code}-{position + 1:02d}",
                name=name,
                description=f"{name}（{unit}）" if unit and rng.random() < 0.3 else None,
                data_type=data_type,
                unit=unit,
                nullable=not is_key,
                is_key=is_key,
                constraints=constraints,
                sensitivity=Sensitivity.L4 if raised else None,
            )
        )
    return dataset


def row_of(obj: Any, columns: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in columns}


DATASET_TABLE = cast(Table, Dataset.__table__)
ITEM_TABLE = cast(Table, DataItem.__table__)
DATASET_COLUMNS = tuple(c.key for c in DATASET_TABLE.columns)
ITEM_COLUMNS = tuple(c.key for c in ITEM_TABLE.columns)


def build_chunk(chunk: Chunk) -> ChunkRows:
    """Rows for datasets [start, start + count), derived exactly as the service derives them."""
    began = time.perf_counter()
    rng = random.Random(SEED * 1_000_003 + chunk.index)
    per, extra = divmod(chunk.total_items, chunk.total_datasets)
    datasets: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    departments = {
        o.code: Department(id=o.id, code=o.code, name=o.name, kind=o.bureau.kind)
        for o in chunk.owners
    }
    for number in range(chunk.start, chunk.start + chunk.count):
        count = per + (1 if number < extra else 0)
        dataset = make_dataset(rng, number, chunk, count, departments)
        _refresh_derived(dataset)
        datasets.append(row_of(dataset, DATASET_COLUMNS))
        items.extend(row_of(item, ITEM_COLUMNS) for item in dataset.items)
    return ChunkRows(datasets, items, time.perf_counter() - began)


# --- databases ---------------------------------------------------------------------------------


def seeding_engine(database_url: str) -> Engine:
    engine = create_engine(sync_url(database_url))
    if engine.dialect.name == "sqlite":

        def pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()

        event.listen(engine, "connect", pragmas)
    return engine


async def create_identities(database_url: str) -> dict[str, uuid.UUID]:
    """The departments and the admin account, through the services; their ids by code."""
    engine = make_engine(Settings(database_url=database_url))
    try:
        async with make_session_factory(engine)() as session:
            ids: dict[str, uuid.UUID] = {}
            for bureau in BUREAUS:
                department = await departments.create(
                    session=session,
                    data=DepartmentCreate(code=bureau.code, name=bureau.name, kind=bureau.kind),
                )
                ids[bureau.code] = department.id
            await accounts.create(
                session=session,
                data=AccountCreate(
                    name=ADMIN_ACCOUNT,
                    display_name="Benchmark administrator",
                    kind=AccountKind.client,
                    department_code=PLATFORM,
                    roles=[Role.platform_admin],
                ),
            )
            await session.commit()
            return ids
    finally:
        await engine.dispose()


async def mint_token(database_url: str) -> str:
    settings = Settings(database_url=database_url)
    engine = make_engine(settings)
    try:
        async with make_session_factory(engine)() as session:
            account = await accounts.find_by_name(session=session, name=ADMIN_ACCOUNT)
            if account is None:
                raise BenchError(f"the account {ADMIN_ACCOUNT} is missing")
            minted, _ttl = await tokens.mint(session=session, settings=settings, account=account)
            await session.commit()
            return minted
    finally:
        await engine.dispose()


@dataclass
class SeedReport:
    migrate_seconds: float = 0.0
    identities_seconds: float = 0.0
    rows_seconds: float = 0.0
    derive_cpu_seconds: float = 0.0
    finish_seconds: float = 0.0
    datasets: int = 0
    items: int = 0
    workers: int = 1

    @property
    def total(self) -> float:
        return (
            self.migrate_seconds + self.identities_seconds + self.rows_seconds + self.finish_seconds
        )


def seed(
    database_url: str, datasets: int, items: int, workers: int, *, sqlite_analyze: bool = False
) -> SeedReport:
    report = SeedReport(workers=workers)
    began = time.perf_counter()
    migrations.upgrade(Settings(database_url=database_url))
    report.migrate_seconds = time.perf_counter() - began

    began = time.perf_counter()
    ids = asyncio.run(create_identities(database_url))
    report.identities_seconds = time.perf_counter() - began
    owners = tuple(Owner(ids[b.code], b.code, b.name, b) for b in BUREAUS)

    began = time.perf_counter()
    now = datetime.now(UTC)
    chunks = [
        Chunk(i, start, min(CHUNK_DATASETS, datasets - start), datasets, items, now, owners)
        for i, start in enumerate(range(0, datasets, CHUNK_DATASETS))
    ]
    engine = seeding_engine(database_url)
    sqlite = engine.dialect.name == "sqlite"
    fts_insert = {
        table: text(f"INSERT INTO {fts} (ref, tokens) VALUES (:ref, :tokens)")  # noqa: S608
        for table, fts in FTS_TABLES.items()
    }
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for done, rows in enumerate(pool.map(build_chunk, chunks), start=1):
                report.derive_cpu_seconds += rows.seconds
                with engine.begin() as connection:
                    connection.execute(insert(DATASET_TABLE), rows.datasets)
                    connection.execute(insert(ITEM_TABLE), rows.items)
                    if sqlite:
                        for table, batch in (("dataset", rows.datasets), ("data_item", rows.items)):
                            connection.execute(
                                fts_insert[table],
                                [{"ref": r["id"].hex, "tokens": r["search_tokens"]} for r in batch],
                            )
                report.datasets += len(rows.datasets)
                report.items += len(rows.items)
                if done % 10 == 0 or done == len(chunks):
                    print(
                        f"  seeded {report.datasets:,} datasets, {report.items:,} items "
                        f"({time.perf_counter() - began:.0f} s)",
                        flush=True,
                    )
        report.rows_seconds = time.perf_counter() - began

        began = time.perf_counter()
        if sqlite:
            # What the server finds: a checkpointed WAL, and no planner statistics unless asked
            # for (the product never runs ANALYZE).
            with engine.connect() as connection:
                if sqlite_analyze:
                    connection.exec_driver_sql("ANALYZE")
                    connection.commit()
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            # What autovacuum does shortly after a bulk load anyway.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
        report.finish_seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    return report


def sample_codes(database_url: str) -> tuple[str, str]:
    """A published dataset's code and one of its item codes, for the exact-code queries."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            count = connection.execute(
                text("SELECT count(*) FROM dataset WHERE status = 'published'")
            ).scalar_one()
            dataset_id, code = connection.execute(
                text(
                    "SELECT id, code FROM dataset WHERE status = 'published' "
                    "ORDER BY code LIMIT 1 OFFSET :n"
                ),
                {"n": int(count) // 2},
            ).one()
            item = connection.execute(
                text("SELECT code FROM data_item WHERE dataset_id = :d ORDER BY position LIMIT 1"),
                {"d": dataset_id},
            ).scalar_one()
            return str(code), str(item)
    finally:
        engine.dispose()


def database_version(database_url: str) -> str:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                version = connection.exec_driver_sql("SELECT sqlite_version()").scalar_one()
                return f"SQLite {version}"
            version = connection.exec_driver_sql("SHOW server_version").scalar_one()
            return f"PostgreSQL {version}"
    finally:
        engine.dispose()


# --- servers -----------------------------------------------------------------------------------


def real_server(database_url: str, workdir: Path, name: str = "real") -> Server:
    env = {**os.environ, "BROKER_DATABASE_URL": database_url, "BROKER_DATABASE_ECHO": "false"}
    return start_server(name, env, workdir)


def baseline_server(bodies_path: Path, workdir: Path) -> Server:
    def command(port: int) -> list[str]:
        script = str(Path(__file__).resolve())
        return [sys.executable, script, "--serve-baseline", str(bodies_path), str(port)]

    return start_server("baseline", dict(os.environ), workdir, command)


def serve_baseline(bodies_path: Path, port: int) -> None:
    """The bare endpoint: each captured URL answered with the captured bytes, nothing else."""
    stored = json.loads(bodies_path.read_text(encoding="utf-8"))
    bodies = {key: body.encode("utf-8") for key, body in stored.items()}
    ready = b'{"status":"ready"}'

    async def respond(request: Request) -> Response:
        if request.url.path == "/readyz":
            return Response(ready, media_type="application/json")
        if "authorization" not in request.headers:
            return Response(status_code=401)
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        key = f"{raw_path.decode('ascii')}?{request.scope['query_string'].decode('ascii')}"
        body = bodies.get(key)
        if body is None:
            return Response(status_code=404)
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/{path:path}", respond)])
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# --- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchQuery:
    label: str
    path: str
    params: tuple[tuple[str, str], ...]

    @property
    def target(self) -> str:
        return f"{self.path}?{urlencode(self.params, quote_via=quote)}"


def queries(dataset_code: str, item_code: str) -> list[BenchQuery]:
    def datasets(label_: str, **params: str) -> BenchQuery:
        return BenchQuery(label_, "/v1/datasets", tuple(params.items()))

    def items(label_: str, **params: str) -> BenchQuery:
        return BenchQuery(label_, "/v1/items", tuple(params.items()))

    return [
        datasets("browse, no filter", limit="50"),
        datasets("q=人口", q="人口"),
        datasets("q=税收", q="税收"),
        datasets("q=用电", q="用电"),
        datasets("q=规模以上工业总产值", q="规模以上工业总产值"),
        datasets("q=全社会用电量", q="全社会用电量"),
        datasets("q=企业 税收", q="企业 税收"),
        datasets("q=税 (1 char)", q="税"),
        datasets("q=revenue", q="revenue"),
        datasets("q=<dataset code>", q=dataset_code),
        datasets("q=gdp 增速", q="gdp 增速"),
        datasets("owner=tax&share=conditional", owner="tax", share_type="conditional"),
        datasets("freshness=stale", freshness="stale"),
        datasets("q=投资&owner=drc&fresh", q="投资", owner="drc", freshness="fresh"),
        datasets("sort=updated", sort="updated"),
        datasets("q=房屋&sort=updated&L2", q="房屋", sort="updated", sensitivity="L2"),
        items("items q=用电量", q="用电量"),
        items("items q=<item code>", q=item_code),
        items("items q=税 (1 char)", q="税"),
    ]


REPEATS = 3
# Issue 17's goals for search, as ratios of pooled p95 latencies measured in the same run.
GOAL_VS_BASELINE = 2.0  # the catalog at full size vs a bare endpoint serving the same bytes
GOAL_GROWTH = 1.5  # the catalog at full size vs the same catalog a tenth the size


@dataclass
class Measurement:
    """One query's samples per repeat: the full catalog, the bare endpoint, the small catalog."""

    query: BenchQuery
    small_query: BenchQuery
    hits: int
    size: int
    real: list[list[float]] = field(default_factory=lambda: [[] for _ in range(REPEATS)])
    baseline: list[list[float]] = field(default_factory=lambda: [[] for _ in range(REPEATS)])
    small: list[list[float]] = field(default_factory=lambda: [[] for _ in range(REPEATS)])
    size_changes: int = 0

    def all_of(self, which: str) -> list[float]:
        return [s for samples in getattr(self, which) for s in samples]


class Bearer:
    """An Authorization header value, minted again before its token could expire mid-run."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.minted_at: float | None = None
        self.header = ""

    def current(self) -> str:
        now = time.monotonic()
        if self.minted_at is None or now - self.minted_at > REMINT_AFTER_SECONDS:
            self.header = f"Bearer {asyncio.run(mint_token(self.database_url))}"
            self.minted_at = now
        return self.header


def fetch(client: httpx.Client, target: str, token: str, name: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    response = client.get(target, headers={"Authorization": token})
    body = response.content
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise BenchError(f"{name} GET {target} answered {response.status_code}: {body[:500]!r}")
    return elapsed, body


def capture(
    client: httpx.Client, bench: list[BenchQuery], small_bench: list[BenchQuery], bearer: Bearer
) -> tuple[list[Measurement], dict[str, bytes]]:
    """One real answer per query: what the baseline will serve, and the hit counts."""
    measurements = []
    bodies: dict[str, bytes] = {}
    for query, small_query in zip(bench, small_bench, strict=True):
        _elapsed, body = fetch(client, query.target, bearer.current(), "real")
        page = json.loads(body)
        hits = int(page["total"]) if "total" in page else len(page["items"])
        measurements.append(Measurement(query, small_query, hits, len(body)))
        bodies[query.target] = body
    return measurements, bodies


@dataclass(frozen=True)
class Targets:
    """The three servers each round visits, in an order that rotates every round."""

    real: httpx.Client
    baseline: httpx.Client
    small: httpx.Client
    bearer: Bearer
    small_bearer: Bearer


def measure(
    measurement: Measurement,
    targets: Targets,
    repeat: int,
    *,
    requests: int,
    warmup: int,
    budget_seconds: float,
) -> None:
    target = measurement.query.target
    small_target = measurement.small_query.target
    for _ in range(warmup):
        fetch(targets.real, target, targets.bearer.current(), "real")
        fetch(targets.baseline, target, targets.bearer.current(), "baseline")
        fetch(targets.small, small_target, targets.small_bearer.current(), "small")
    began = time.monotonic()
    order = ("real", "baseline", "small")
    for round_ in range(requests):
        shift = round_ % len(order)
        for name in order[shift:] + order[:shift]:
            if name == "small":
                elapsed, _body = fetch(
                    targets.small, small_target, targets.small_bearer.current(), name
                )
                measurement.small[repeat].append(elapsed)
                continue
            client = targets.real if name == "real" else targets.baseline
            elapsed, body = fetch(client, target, targets.bearer.current(), name)
            if name == "real":
                measurement.real[repeat].append(elapsed)
                measurement.size_changes += len(body) != measurement.size
            else:
                measurement.baseline[repeat].append(elapsed)
                if len(body) != measurement.size:
                    raise BenchError(f"the baseline answered {target} with another size")
        if time.monotonic() - began > budget_seconds and round_ + 1 >= MIN_SAMPLES:
            break


def width(text_: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text_)


def left(text_: str, size: int) -> str:
    return text_ + " " * max(0, size - width(text_))


def report(measurements: list[Measurement]) -> None:
    """Per query, all repeats pooled: the full catalog against the bare endpoint and the small."""
    header = (
        f"{left('query', 34)} {'hits':>6} {'bytes':>8} {'n':>4} | "
        f"{'real p50':>9} {'p95':>8} | {'base p50':>9} {'p95':>8} | {'small p95':>9} | "
        f"{'x p50':>6} {'x p95':>6} {'grow':>5}"
    )
    print(header)
    print("-" * len(header))
    for m in measurements:
        real, base, small = m.all_of("real"), m.all_of("baseline"), m.all_of("small")
        r50, r95 = percentile(real, 0.5) * 1000, percentile(real, 0.95) * 1000
        b50, b95 = percentile(base, 0.5) * 1000, percentile(base, 0.95) * 1000
        s95 = percentile(small, 0.95) * 1000
        note = f"  ({m.size_changes} real bodies differed in size)" if m.size_changes else ""
        print(
            f"{left(m.query.label, 34)} {m.hits:>6} {m.size:>8,} {len(real):>4} | "
            f"{r50:>9.2f} {r95:>8.2f} | {b50:>9.2f} {b95:>8.2f} | {s95:>9.2f} | "
            f"{r50 / b50:>6.1f} {r95 / b95:>6.1f} {r95 / s95:>5.2f}{note}"
        )
    print(
        "hits: `total` for /v1/datasets, items on the page for /v1/items; n: timed requests per "
        "server; times in ms; x: real / baseline; grow: real p95 / small catalog p95"
    )


def pooled_p95(measurements: list[Measurement], which: str, repeat: int) -> float:
    return percentile([s for m in measurements for s in getattr(m, which)[repeat]], 0.95)


def goals(measurements: list[Measurement], datasets: int, small_datasets: int) -> list[str]:
    """Issue 17's two search rows, per repeat and as the median of the repeats; the missed ones."""
    vs_baseline: list[float] = []
    growth: list[float] = []
    print()
    print(f"{'repeat':<8} {'real p95':>9} {'base p95':>9} {'small p95':>10} | {'x base':>7} grow")
    for repeat in range(REPEATS):
        real = pooled_p95(measurements, "real", repeat)
        base = pooled_p95(measurements, "baseline", repeat)
        small = pooled_p95(measurements, "small", repeat)
        vs_baseline.append(real / base)
        growth.append(real / small)
        print(
            f"{repeat + 1:<8} {real * 1000:>9.2f} {base * 1000:>9.2f} {small * 1000:>10.2f} | "
            f"{real / base:>7.2f} {real / small:>6.2f}"
        )
    rows = [
        (
            f"search p95, {datasets:,} datasets, vs a bare endpoint, same bytes",
            statistics.median(vs_baseline),
            GOAL_VS_BASELINE,
        ),
        (
            f"search p95 at {datasets:,} vs {small_datasets:,} datasets",
            statistics.median(growth),
            GOAL_GROWTH,
        ),
    ]
    print()
    print(f"{left('goal (pooled p95, median of 3 repeats)', 58)} {'ratio':>7} {'goal':>7}")
    missed = []
    for name, ratio, goal in rows:
        verdict = "met" if ratio <= goal else "MISSED"
        print(f"{left(name, 58)} {ratio:>6.2f}x {'<= ' + str(goal):>7}  {verdict}")
        if ratio > goal:
            missed.append(f"{name}: {ratio:.2f}x > {goal}x")
    return missed


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--database-url", help="PostgreSQL admin URL; a scratch database is made next to it."
    )
    parser.add_argument("--datasets", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument(
        "--small-datasets",
        type=int,
        help="The small catalog the growth is measured against (default: a tenth of --datasets, "
        "with items in the same proportion).",
    )
    parser.add_argument(
        "--requests", type=int, default=60, help="Timed requests per query and repeat."
    )
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests per query.")
    parser.add_argument(
        "--max-seconds-per-query",
        type=float,
        default=60.0,
        help=f"Stop a query's timed loop after this long (at least {MIN_SAMPLES} samples).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="A smoke size for CI: 2,000 datasets against 200, 20 requests per query.",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Processes deriving tokens."
    )
    parser.add_argument(
        "--sqlite-analyze",
        action="store_true",
        help="Run ANALYZE on SQLite after seeding. The product never does; this shows what "
        "planner statistics change.",
    )
    parser.add_argument(
        "--serve-baseline", nargs=2, metavar=("FILE", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.items, args.requests, args.warmup = 2_000, 30_000, MIN_SAMPLES, 1
        args.max_seconds_per_query = 10.0
    if args.small_datasets is None:
        args.small_datasets = max(1, args.datasets // 10)
    args.small_items = args.items * args.small_datasets // args.datasets
    if args.serve_baseline is None:
        if args.datasets < 1 or args.items < 0 or args.requests < 1 or args.warmup < 0:
            parser.error("--datasets and --requests must be positive, --items and --warmup >= 0")
        if not 1 <= args.small_datasets <= args.datasets:
            parser.error("--small-datasets must be between 1 and --datasets")
        if args.requests < MIN_SAMPLES:
            parser.error(f"--requests must be at least {MIN_SAMPLES}")
    return args


def seed_and_say(args: argparse.Namespace, database_url: str, datasets: int, items: int) -> None:
    seeded = seed(
        database_url, datasets, items, max(1, args.workers), sqlite_analyze=args.sqlite_analyze
    )
    print(
        f"seeded {seeded.datasets:,} datasets and {seeded.items:,} items in "
        f"{seeded.total:.1f} s (migrate {seeded.migrate_seconds:.1f} s, departments and "
        f"account {seeded.identities_seconds:.1f} s, derive+insert "
        f"{seeded.rows_seconds:.1f} s with {seeded.workers} workers "
        f"[{seeded.derive_cpu_seconds:.1f} s deriving tokens], "
        f"checkpoint/analyze {seeded.finish_seconds:.1f} s)"
        + (" [SQLite ANALYZEd]" if args.sqlite_analyze else ""),
        flush=True,
    )


def run(args: argparse.Namespace) -> None:
    if args.database_url and make_url(args.database_url).get_backend_name() != "postgresql":
        raise BenchError("--database-url must be a PostgreSQL URL; SQLite is the default.")
    with (
        tempfile.TemporaryDirectory(prefix="bench-search-") as tmp,
        scratch_database(args.database_url, Path(tmp), "broker_bench_search") as database_url,
        scratch_database(args.database_url, Path(tmp), "broker_bench_search_small") as small_url,
    ):
        workdir = Path(tmp)
        print(
            f"catalog search benchmark: {args.datasets:,} datasets, {args.items:,} items "
            f"(growth against {args.small_datasets:,} and {args.small_items:,}), "
            f"{REPEATS} repeats of {args.requests} requests per query; "
            f"{database_version_safe(database_url)}; "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs",
            flush=True,
        )
        seed_and_say(args, database_url, args.datasets, args.items)
        seed_and_say(args, small_url, args.small_datasets, args.small_items)
        bench = queries(*sample_codes(database_url))
        small_bench = queries(*sample_codes(small_url))
        bearer, small_bearer = Bearer(database_url), Bearer(small_url)
        servers: list[Server] = []
        try:
            real = real_server(database_url, workdir)
            servers.append(real)
            small = real_server(small_url, workdir, "small")
            servers.append(small)
            with (
                httpx.Client(base_url=real.base_url, timeout=REQUEST_TIMEOUT_SECONDS) as rc,
                httpx.Client(base_url=small.base_url, timeout=REQUEST_TIMEOUT_SECONDS) as sc,
            ):
                measurements, bodies = capture(rc, bench, small_bench, bearer)
                bodies_path = workdir / "bodies.json"
                bodies_path.write_text(
                    json.dumps({k: v.decode("utf-8") for k, v in bodies.items()}),
                    encoding="utf-8",
                )
                base = baseline_server(bodies_path, workdir)
                servers.append(base)
                with httpx.Client(base_url=base.base_url, timeout=REQUEST_TIMEOUT_SECONDS) as bc:
                    for m in measurements:
                        check = fetch(bc, m.query.target, bearer.current(), "baseline")[1]
                        if check != bodies[m.query.target]:
                            raise BenchError(f"the baseline does not serve {m.query.target}")
                    targets = Targets(rc, bc, sc, bearer, small_bearer)
                    for repeat in range(REPEATS):
                        for m in measurements:
                            measure(
                                m,
                                targets,
                                repeat,
                                requests=args.requests,
                                warmup=args.warmup if repeat == 0 else 0,
                                budget_seconds=args.max_seconds_per_query,
                            )
                        print(
                            f"  repeat {repeat + 1}: pooled real p95 "
                            f"{pooled_p95(measurements, 'real', repeat) * 1000:.1f} ms",
                            flush=True,
                        )
            print()
            report(measurements)
            missed = goals(measurements, args.datasets, args.small_datasets)
            rss = {s.name: s.peak_kib() for s in servers}
            print(
                "peak RSS (VmHWM): "
                + ", ".join(
                    f"{name} server {value / 1024:.0f} MiB" if value else f"{name} unknown"
                    for name, value in rss.items()
                )
            )
        finally:
            for server in servers:
                server.stop()
    if missed:
        raise BenchError("goal missed: " + "; ".join(missed))


def database_version_safe(database_url: str) -> str:
    try:
        return database_version(database_url)
    except Exception as exc:
        raise BenchError(f"cannot reach the database: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_baseline is not None:
        bodies_file, port = args.serve_baseline
        serve_baseline(Path(bodies_file), int(port))
        return 0
    return exit_status(partial(run, args))


if __name__ == "__main__":
    sys.exit(main())
