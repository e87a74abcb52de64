"""The providers a region or a data source can be on: seven clouds and IDC."""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    AWS = "aws"
    AZURE = "azure"
    GCP = "gcp"
    ALIBABA = "alibaba"
    TENCENT = "tencent"
    BAIDU = "baidu"
    HUAWEI = "huawei"
    IDC = "idc"
