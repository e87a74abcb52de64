"""The node ledger: a pool's nodes are billed from launch (boot included) until removed."""

from __future__ import annotations

from kubesim.config import parse_config
from kubesim.nodes import Pool


def priced_pool(price: float | None = 0.36) -> Pool:
    return Pool("general", "8", "32Gi", 1, 8, 2, price_per_hour=price)


def test_nodes_are_billed_from_launch_until_removed() -> None:
    pool = priced_pool()
    pool.node_launched("a", at=100.0)
    pool.node_launched("b", at=130.0)
    assert pool.node_seconds(160.0) == 60.0 + 30.0
    pool.node_removed("a", at=190.0)
    # "a" stopped counting at 190; "b" still runs.
    assert pool.node_seconds(200.0) == 90.0 + 70.0
    # A node removed twice (a watch replay) is billed once.
    pool.node_removed("a", at=500.0)
    assert pool.node_seconds(200.0) == 90.0 + 70.0


def test_a_relaunch_of_a_billed_node_keeps_its_first_launch() -> None:
    pool = priced_pool()
    pool.node_launched("a", at=100.0)
    pool.node_launched("a", at=150.0)
    assert pool.node_seconds(200.0) == 100.0


def test_the_regions_file_prices_pools() -> None:
    config = parse_config(
        {
            "regions": [
                {
                    "name": "aws-us-east-1",
                    "node_pools": [
                        {"name": "priced", "price_per_hour": 0.384},
                        {"name": "free"},
                    ],
                }
            ]
        }
    )
    priced, free = config.regions[0].pools
    assert priced.price_per_hour == 0.384
    assert free.price_per_hour is None
    assert Pool.from_spec(priced).price_per_hour == 0.384
