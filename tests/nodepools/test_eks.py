"""EKS adapter against moto (real boto3 wire format) and botocore's Stubber for the
throttling and error shapes moto does not produce."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolOwnedByAutoscaler,
    NodePoolThrottled,
)
from meridian.nodepools.eks import EksNodeGroupProvider
from meridian.nodepools.registry import provider_for

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        session = boto3.session.Session(
            region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        eks, asg, ec2 = session.client("eks"), session.client("autoscaling"), session.client("ec2")
        eks.create_cluster(
            name="prod",
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        nodegroup = eks.create_nodegroup(
            clusterName="prod",
            nodegroupName="ng-general",
            nodeRole="arn:aws:iam::123456789012:role/node",
            subnets=["subnet-1"],
            scalingConfig={"minSize": 1, "maxSize": 5, "desiredSize": 2},
        )["nodegroup"]
        # moto names the node group's ASG but does not create it; build it so the
        # adapter walks the same ASG -> EC2 path it walks in AWS.
        asg_name = nodegroup["resources"]["autoScalingGroups"][0]["name"]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a"
        )
        ec2.create_launch_template(
            LaunchTemplateName="nodes",
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.large"},
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=asg_name,
            LaunchTemplate={"LaunchTemplateName": "nodes"},
            MinSize=1,
            MaxSize=5,
            DesiredCapacity=2,
            VPCZoneIdentifier=subnet["Subnet"]["SubnetId"],
        )
        sent: list[tuple[str, Any]] = []

        def record(request: Any, **_: Any) -> None:
            body = request.body
            if isinstance(body, bytes):
                body = body.decode()
            sent.append((request.method, request.url, body))

        for client in (eks, asg, ec2):
            client.meta.events.register("before-send", record)
        provider = provider_for(
            "eks",
            {"name": "general", "cluster": "prod", "nodegroup": "ng-general"},
            eks=eks,
            autoscaling=asg,
            ec2=ec2,
        )
        yield {
            "provider": provider,
            "eks": eks,
            "asg": asg,
            "ec2": ec2,
            "asg_name": asg_name,
            "sent": sent,
        }


def test_describe_reads_scaling_config_and_asg_nodes(aws: dict[str, Any]) -> None:
    state = aws["provider"].describe("general")
    assert (state.name, state.min, state.desired, state.max, state.current) == (
        "ng-general",
        1,
        2,
        5,
        2,
    )
    assert state.autoscaler_enabled is False
    assert len(state.nodes) == 2
    assert all(n.startswith("ip-10-0-1-") and n.endswith(".ec2.internal") for n in state.nodes)
    assert aws["provider"].list_nodes("general") == state.nodes


def test_set_desired_sends_update_nodegroup_config(aws: dict[str, Any]) -> None:
    aws["sent"].clear()
    aws["provider"].set_desired("general", 4)
    updates = [s for s in aws["sent"] if s[0] == "POST" and s[1].endswith("/update-config")]
    assert len(updates) == 1
    assert updates[0][1].endswith("/clusters/prod/node-groups/ng-general/update-config")
    assert json.loads(updates[0][2])["scalingConfig"] == {
        "minSize": 1,
        "maxSize": 5,
        "desiredSize": 4,
    }
    assert aws["provider"].describe("general").desired == 4


def test_set_desired_outside_bounds_is_refused_without_a_call(aws: dict[str, Any]) -> None:
    aws["sent"].clear()
    with pytest.raises(NodePoolInvalidRequest):
        aws["provider"].set_desired("general", 6)
    assert not [s for s in aws["sent"] if s[1].endswith("/update-config")]


def test_set_bounds_clamps_desired(aws: dict[str, Any]) -> None:
    aws["provider"].set_bounds("general", 3, 8)
    state = aws["provider"].describe("general")
    assert (state.min, state.desired, state.max) == (3, 3, 8)


def test_cluster_autoscaler_tag_makes_the_autoscaler_the_owner(aws: dict[str, Any]) -> None:
    aws["asg"].create_or_update_tags(
        Tags=[
            {
                "ResourceId": aws["asg_name"],
                "ResourceType": "auto-scaling-group",
                "Key": "k8s.io/cluster-autoscaler/enabled",
                "Value": "true",
                "PropagateAtLaunch": False,
            }
        ]
    )
    assert aws["provider"].describe("general").autoscaler_enabled is True
    with pytest.raises(NodePoolOwnedByAutoscaler):
        aws["provider"].set_desired("general", 3)
    aws["provider"].set_bounds("general", 2, 6)
    assert aws["provider"].describe("general").max == 6


def test_remove_nodes_terminates_and_decrements(aws: dict[str, Any]) -> None:
    provider = aws["provider"]
    victim = provider.list_nodes("general")[0]
    aws["sent"].clear()
    provider.remove_nodes("general", [victim])
    terminate = [s for s in aws["sent"] if "TerminateInstanceInAutoScalingGroup" in str(s[2])]
    assert len(terminate) == 1
    assert "ShouldDecrementDesiredCapacity=true" in terminate[0][2]
    group = aws["asg"].describe_auto_scaling_groups(AutoScalingGroupNames=[aws["asg_name"]])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 1
    assert victim not in provider.list_nodes("general")


def test_remove_unknown_node_or_below_min_is_refused(aws: dict[str, Any]) -> None:
    provider = aws["provider"]
    with pytest.raises(NodePoolInvalidRequest):
        provider.remove_nodes("general", ["ip-10-9-9-9.ec2.internal"])
    with pytest.raises(NodePoolInvalidRequest):
        provider.remove_nodes("general", provider.list_nodes("general"))


def test_unknown_nodegroup_is_not_found(aws: dict[str, Any]) -> None:
    with pytest.raises(NodePoolNotFound) as info:
        aws["provider"].describe("ng-missing")
    assert info.value.__cause__ is not None


def _stubbed() -> tuple[EksNodeGroupProvider, Stubber]:
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    eks = session.client("eks")
    provider = EksNodeGroupProvider(
        {"name": "general", "cluster": "prod", "nodegroup": "ng-general"},
        eks=eks,
        autoscaling=session.client("autoscaling"),
        ec2=session.client("ec2"),
    )
    return provider, Stubber(eks)


@pytest.mark.parametrize("code", ["ThrottlingException", "TooManyRequestsException"])
def test_throttling_maps_to_throttled(code: str) -> None:
    provider, stubber = _stubbed()
    stubber.add_client_error(
        "describe_nodegroup",
        service_error_code=code,
        http_status_code=429,
        expected_params={"clusterName": "prod", "nodegroupName": "ng-general"},
    )
    with stubber, pytest.raises(NodePoolThrottled) as info:
        provider.describe("general")
    assert info.value.retry_after is None
    stubber.assert_no_pending_responses()


def test_server_error_is_retryable_and_access_denied_is_not() -> None:
    provider, stubber = _stubbed()
    stubber.add_client_error("describe_nodegroup", "ServerException", http_status_code=500)
    stubber.add_client_error("describe_nodegroup", "AccessDeniedException", http_status_code=403)
    with stubber:
        with pytest.raises(NodePoolError) as first:
            provider.describe("general")
        with pytest.raises(NodePoolError) as second:
            provider.describe("general")
    assert first.value.retryable is True
    assert second.value.retryable is False
