"""The edge: an internet-facing ALB that lets only the PDS's own paths through.

Handles live on subdomains (alice.pds.example.com), so the certificate and the DNS records
cover the domain and its wildcard. Everything the PDS does not serve gets a 403 from the
load balancer, so exploit crawlers never reach the PDS; the allow-list comes from routes.py,
the same table the local edge proxy applies.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.compliance import acknowledge, skip_checkov
from pds_aws.names import HEALTH_CHECK_PATH, PDS_PORT
from pds_aws.routes import (
    DENIED_BODY,
    ROBOTS_PATH,
    ROBOTS_TXT,
    alb_rule_groups,
)

# The PDS closes an idle keep-alive connection after 90 s (@atproto/pds dist/index.js:
# `server.keepAliveTimeout = 90_000`). The ALB must give up on an idle connection first, or it
# reuses one the PDS has just closed and answers 502 (an ELB 5xx, invisible to the target-5xx
# alarm). The subscribeRepos websocket survives 60 s only if a frame passes within that time:
# the PDS itself sends no heartbeat (@atproto/xrpc-server stream/server.js), but relays ping
# every 30 s (bluesky-social/indigo events/consumer.go, HandleRepoStream), and a client that
# sends nothing for 60 s is cut off and reconnects with its cursor. Measured locally by
# benchmarks/firehose_idle.py (BENCHMARKS.md, "Idle firehose websocket").
PDS_KEEP_ALIVE_TIMEOUT = Duration.seconds(90)
IDLE_TIMEOUT = Duration.seconds(60)
ROBOTS_RULE_PRIORITY = 1
FIRST_FORWARD_RULE_PRIORITY = 10
# With one task and min 0 %, a replaced task is already stopping; don't hold it long.
DEREGISTRATION_DELAY = Duration.seconds(10)
# A new task counts as healthy after HEALTHY_THRESHOLD passed checks, one per interval.
HEALTH_CHECK_INTERVAL = Duration.seconds(15)
HEALTHY_THRESHOLD = 2


class Edge(Construct):
    """Certificate, load balancer, listeners with the PDS path allow-list, DNS records."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        hosted_zone: route53.IHostedZone,
    ) -> None:
        super().__init__(scope, construct_id)
        domain = config.pds.domain
        wildcard = f"*.{domain}"

        self.certificate = acm.Certificate(
            self,
            "Certificate",
            domain_name=domain,
            subject_alternative_names=[wildcard],
            validation=acm.CertificateValidation.from_dns(hosted_zone),
        )
        skip_checkov(
            self.certificate,
            {"CKV2_AWS_71": "handles are subdomains of the PDS domain: the wildcard is required"},
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            description="PDS load balancer: HTTP and HTTPS from the internet",
            allow_all_outbound=False,
        )
        for port in (80, 443):
            self.security_group.add_ingress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"public PDS traffic on {port}"
            )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            internet_facing=True,
            security_group=self.security_group,
            idle_timeout=IDLE_TIMEOUT,
            drop_invalid_header_fields=True,
        )
        acknowledge(
            self.security_group,
            {
                "AwsSolutions-EC23": (
                    "A public PDS: the Bluesky network (relays, app views, users) must reach "
                    "ports 80 and 443 from anywhere; paths are filtered by the listener rules."
                ),
            },
            checkov={"CKV_AWS_260": "port 80 only answers with a redirect to HTTPS"},
        )
        acknowledge(
            self.load_balancer,
            {
                "AwsSolutions-ELB2": (
                    "No ALB access logs: the PDS logs every request in its log group and "
                    "the dashboard shows the ALB metrics; the logs bucket would cost more than it "
                    "tells a one-person server's operator."
                ),
                "NIST.800.53.R5-ELBLoggingEnabled": (
                    "Same as AwsSolutions-ELB2: no ALB access logs."
                ),
                "NIST.800.53.R5-ALBWAFEnabled": (
                    "A web ACL costs more per month than the PDS task; the listener lets only "
                    "the PDS's own paths through and the PDS rate-limits its endpoints."
                ),
                "NIST.800.53.R5-ELBDeletionProtectionEnabled": (
                    "The ALB holds no data and is recreated by a deploy; deletion protection "
                    "would block `make destroy` of a test stack."
                ),
                "NIST.800.53.R5-ELBv2ACMCertificateRequired": (
                    "The HTTP listener only answers with a permanent redirect to HTTPS; the "
                    "HTTPS listener carries the ACM certificate."
                ),
            },
            checkov={"CKV_AWS_91": "no ALB access logs; see AwsSolutions-ELB2 below"},
        )
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "PdsTargetGroup",
            vpc=vpc,
            port=PDS_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=DEREGISTRATION_DELAY,
            health_check=elbv2.HealthCheck(
                path=HEALTH_CHECK_PATH,
                healthy_http_codes="200",
                interval=HEALTH_CHECK_INTERVAL,
                timeout=Duration.seconds(5),
                healthy_threshold_count=HEALTHY_THRESHOLD,
                unhealthy_threshold_count=3,
            ),
        )

        self.https_listener = self.load_balancer.add_listener(
            "Https",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(self.certificate)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(
                403, content_type="text/plain", message_body=DENIED_BODY
            ),
        )
        self.https_listener.add_action(
            "RobotsTxt",
            priority=ROBOTS_RULE_PRIORITY,
            conditions=[elbv2.ListenerCondition.path_patterns([ROBOTS_PATH])],
            action=elbv2.ListenerAction.fixed_response(
                200, content_type="text/plain", message_body=ROBOTS_TXT
            ),
        )
        for index, patterns in enumerate(alb_rule_groups()):
            self.https_listener.add_action(
                f"Pds{index + 1}",
                priority=FIRST_FORWARD_RULE_PRIORITY + index,
                conditions=[elbv2.ListenerCondition.path_patterns(list(patterns))],
                action=elbv2.ListenerAction.forward([self.target_group]),
            )
        self.load_balancer.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=False,
            default_action=elbv2.ListenerAction.redirect(
                protocol="HTTPS", port="443", permanent=True
            ),
        )

        alias = route53.RecordTarget.from_alias(
            route53_targets.LoadBalancerTarget(self.load_balancer)
        )
        for record_id, name in (("DomainRecord", domain), ("WildcardRecord", wildcard)):
            route53.ARecord(self, record_id, zone=hosted_zone, record_name=f"{name}.", target=alias)
