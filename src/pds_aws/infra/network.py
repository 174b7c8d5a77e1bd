"""The network: a VPC in two zones with public subnets only, an S3 gateway endpoint, the cluster.

No NAT gateway: it would cost more than the task itself, and the task needs direct egress to
the PLC directory, relays and the app view anyway. S3 traffic (blobs, backups) stays on the
gateway endpoint, which is free and lets the buckets refuse requests from anywhere else.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from pds_aws.infra.compliance import acknowledge, skip_checkov

AZ_COUNT = 2
NO_CONTAINER_INSIGHTS = (
    "Container Insights is opt-in with the monitoring.container_insights setting. Its custom "
    "metrics would cost more than the rest of the monitoring, see guides/COST.md, and the alarms "
    "and dashboard use the free AWS/ECS service and ALB metrics. One task: service = task metrics."
)


class Network(Construct):
    """VPC, S3 gateway endpoint and ECS cluster."""

    def __init__(
        self, scope: Construct, construct_id: str, *, container_insights: bool = False
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=AZ_COUNT,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
            ],
            # Nothing uses the default security group: strip its rules.
            restrict_default_security_group=True,
        )
        acknowledge(
            self.vpc,
            {
                "AwsSolutions-VPC7": (
                    "No flow logs: one public service behind an ALB; the ALB, the PDS and "
                    "CloudTrail already record who talks to it, and flow-log ingestion would cost "
                    "more than the rest of the monitoring."
                ),
                "NIST.800.53.R5-VPCFlowLogsEnabled": (
                    "Same as AwsSolutions-VPC7: no flow logs, on cost grounds."
                ),
                "NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW": (
                    "Public subnets only, by design: the task needs egress to the PLC "
                    "directory, relays and the app view, and a NAT gateway costs more than the "
                    "task."
                ),
                "NIST.800.53.R5-VPCSubnetAutoAssignPublicIpDisabled": (
                    "Public subnets without NAT: the task and the ALB need public addresses; "
                    "inbound access is closed by security groups (only the ALB reaches the task)."
                ),
            },
        )
        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3
        )
        self.public_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            container_insights_v2=(
                ecs.ContainerInsights.ENABLED
                if container_insights
                else ecs.ContainerInsights.DISABLED
            ),
            enable_fargate_capacity_providers=True,
        )
        if not container_insights:
            acknowledge(
                self.cluster,
                {
                    "AwsSolutions-ECS4": NO_CONTAINER_INSIGHTS,
                },
            )
            skip_checkov(self.cluster, {"CKV_AWS_65": NO_CONTAINER_INSIGHTS})
