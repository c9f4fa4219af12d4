"""DCAT-AP 3 JSON-LD export, readable by CKAN's ckanext-dcat harvester (it parses with rdflib)."""

from typing import Any

from catalog.datasets.models import Dataset
from catalog.vocab import OpenType, UpdateCycle

FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
ACCESS_RIGHT = "http://publications.europa.eu/resource/authority/access-right/"

# EU "frequency" authority table; a dekad (旬) is three times a month.
ACCRUAL_PERIODICITY = {
    UpdateCycle.realtime: "UPDATE_CONT",
    UpdateCycle.daily: "DAILY",
    UpdateCycle.weekly: "WEEKLY",
    UpdateCycle.dekad: "MONTHLY_3",
    UpdateCycle.monthly: "MONTHLY",
    UpdateCycle.quarterly: "QUARTERLY",
    UpdateCycle.semiannual: "ANNUAL_2",
    UpdateCycle.annual: "ANNUAL",
    UpdateCycle.irregular: "IRREG",
}
ACCESS_RIGHTS = {
    OpenType.open: "PUBLIC",
    OpenType.conditional_open: "RESTRICTED",
    OpenType.not_open: "NON_PUBLIC",
}

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dct:modified": {"@type": "xsd:dateTime"},
    "dcat:startDate": {"@type": "xsd:date"},
    "dcat:endDate": {"@type": "xsd:date"},
    "dct:accrualPeriodicity": {"@type": "@id"},
    "dct:accessRights": {"@type": "@id"},
    "dcat:accessURL": {"@type": "@id"},
}


def _dataset_node(dataset: Dataset, base_url: str) -> dict[str, Any]:
    uri = f"{base_url}/v1/datasets/{dataset.code}"
    node: dict[str, Any] = {
        "@id": uri,
        "@type": "dcat:Dataset",
        "dct:identifier": dataset.code,
        "dct:title": {"@value": dataset.title, "@language": "zh"},
        "dct:description": {"@value": dataset.description or dataset.title, "@language": "zh"},
        "dct:publisher": {
            "@id": f"{base_url}/v1/departments/{dataset.owner.code}",
            "@type": "foaf:Agent",
            "foaf:name": {"@value": dataset.owner.name, "@language": "zh"},
            "dct:identifier": dataset.owner.code,
        },
        "dct:accrualPeriodicity": FREQUENCY + ACCRUAL_PERIODICITY[dataset.update_cycle],
        "dct:accessRights": ACCESS_RIGHT + ACCESS_RIGHTS[dataset.open_type],
        "dcat:keyword": [{"@value": item.name, "@language": "zh"} for item in dataset.items],
        "dcat:distribution": {
            "@id": f"{uri}#api",
            "@type": "dcat:Distribution",
            "dcat:accessURL": uri,
            "dct:title": {"@value": "数据资源申请接口", "@language": "zh"},
        },
    }
    if dataset.last_updated_at is not None:
        node["dct:modified"] = dataset.last_updated_at.isoformat()
    if dataset.temporal_start or dataset.temporal_end:
        period: dict[str, Any] = {"@type": "dct:PeriodOfTime"}
        if dataset.temporal_start:
            period["dcat:startDate"] = dataset.temporal_start.isoformat()
        if dataset.temporal_end:
            period["dcat:endDate"] = dataset.temporal_end.isoformat()
        node["dct:temporal"] = period
    if dataset.spatial_coverage:
        node["dct:spatial"] = {"@value": dataset.spatial_coverage, "@language": "zh"}
    return node


def catalog_document(datasets: list[Dataset], *, base_url: str, title: str) -> dict[str, Any]:
    base = base_url.rstrip("/")
    return {
        "@context": CONTEXT,
        "@id": f"{base}/v1/catalog/dcat",
        "@type": "dcat:Catalog",
        "dct:title": {"@value": title, "@language": "zh"},
        "dct:description": {"@value": "政务信息资源目录", "@language": "zh"},
        "dcat:dataset": [_dataset_node(d, base) for d in datasets],
    }
