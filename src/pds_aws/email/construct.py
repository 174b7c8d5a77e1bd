"""E-mail: SES domain identity, least-privilege SMTP credentials, PDS_EMAIL_SMTP_URL secret.

The PDS sends account e-mails (confirmation, password reset) over SMTP. SES SMTP credentials
are an IAM access key whose secret is turned into an SMTP password; that password contains
`+`, `/` and `=`, so it must be percent-encoded in the URL. A custom resource
(smtp_url/handler.py, behind infra/custom_resource.py) creates the key, derives the password
and writes the URL into a secret, so the secret key is never in the template, the outputs or
a log.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import (
    CustomResource,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ses as ses
from constructs import Construct

from pds_aws.config import Config, ConfigError
from pds_aws.email.smtp_url.handler import smtp_endpoint
from pds_aws.infra.compliance import acknowledge, nag_text
from pds_aws.infra.custom_resource import HandlerSpec, deploy_time_handler
from pds_aws.infra.pds_secret import task_secret
from pds_aws.infra.storage import removal_policy

MAIL_FROM_SUBDOMAIN = "mail"
# Bump to rotate the SMTP credentials: a new key is made and CloudFormation deletes the old.
CREDENTIALS_GENERATION = "1"
CREDENTIALS_HANDLER = HandlerSpec(
    code_directory=Path(__file__).resolve().parent / "smtp_url",
    description="Creates the SES SMTP access key and stores PDS_EMAIL_SMTP_URL",
    apis="IAM and Secrets Manager",
    log_contents="only access key ids",
)


def check_sender(config: Config) -> None:
    """SES sends only from the verified identity: the PDS domain or one of its subdomains."""
    domain = config.pds.domain
    sender_domain = config.pds.email_from_address.rpartition("@")[2]
    if sender_domain != domain and not sender_domain.endswith("." + domain):
        raise ConfigError(
            f"{config.source}: pds.email_from = {config.pds.email_from!r}: the stack verifies "
            f"{domain!r} in SES, so account e-mails must come from an address in it; "
            f"example: email_from = 'noreply@{domain}' (or leave it empty)"
        )


class Email(Construct):
    """SES identity for the PDS domain and the `PDS_EMAIL_SMTP_URL` secret.

    Four parts, in order: the verified domain (DKIM and MAIL FROM records), the SMTP user
    allowed to send from the configured From address, the secret holding the SMTP URL, and
    the custom resource that makes the user's access key and writes the URL into the secret.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        hosted_zone: route53.IHostedZone,
        region: str,
    ) -> None:
        super().__init__(scope, construct_id)
        check_sender(config)
        self.credentials_generation = CREDENTIALS_GENERATION
        removal = removal_policy(config)
        self.identity = self._verified_domain(config.pds.domain, hosted_zone, region)
        self.smtp_user = self._smtp_user(config.pds.email_from_address)
        self.smtp_url_secret = self._smtp_url_secret(config.pds.domain, region, removal)
        self.smtp_credentials = self._smtp_credentials(config, region)

    def _verified_domain(
        self, domain: str, hosted_zone: route53.IHostedZone, region: str
    ) -> ses.EmailIdentity:
        """The SES domain identity with Easy DKIM and a MAIL FROM subdomain, and their records."""
        mail_from_domain = f"{MAIL_FROM_SUBDOMAIN}.{domain}"
        identity = ses.EmailIdentity(
            self,
            "Identity",
            identity=ses.Identity.domain(domain),
            dkim_identity=ses.DkimIdentity.easy_dkim(ses.EasyDkimSigningKeyLength.RSA_2048_BIT),
            mail_from_domain=mail_from_domain,
            mail_from_behavior_on_mx_failure=ses.MailFromBehaviorOnMxFailure.USE_DEFAULT_VALUE,
        )
        # The identity is the PDS domain, not the zone apex, so the records are written here
        # (Identity.public_hosted_zone would verify the whole zone).
        for index, (name, value) in enumerate(
            (
                (identity.dkim_dns_token_name1, identity.dkim_dns_token_value1),
                (identity.dkim_dns_token_name2, identity.dkim_dns_token_value2),
                (identity.dkim_dns_token_name3, identity.dkim_dns_token_value3),
            ),
            start=1,
        ):
            route53.CnameRecord(
                self,
                f"DkimRecord{index}",
                zone=hosted_zone,
                # The token name is already fully qualified: keep the zone from being appended.
                record_name=f"{name}.",
                domain_name=value,
            )
        route53.MxRecord(
            self,
            "MailFromMx",
            zone=hosted_zone,
            record_name=f"{mail_from_domain}.",
            values=[
                route53.MxRecordValue(
                    host_name=f"feedback-smtp.{region}.amazonses.com", priority=10
                )
            ],
        )
        route53.TxtRecord(
            self,
            "MailFromSpf",
            zone=hosted_zone,
            record_name=f"{mail_from_domain}.",
            values=["v=spf1 include:amazonses.com ~all"],
        )
        return identity

    def _smtp_user(self, from_address: str) -> iam.User:
        """The IAM user behind the SMTP credentials: raw e-mail from the From address only.

        SES authorizes a send against every identity involved: the sender's and, while the
        account is in the sandbox, the recipient's too. So the resource is every identity of
        the account and the From address is pinned by the `ses:FromAddress` condition; scoped
        to `identity/<domain>`, a sandbox send to a verified recipient fails with 554. The
        permission comes from a group: users carry no policies of their own.
        """
        send_group = iam.Group(self, "SmtpSendersGroup")
        self._any_identity = Stack.of(self).format_arn(
            service="ses", resource="identity", resource_name="*"
        )
        send_group.add_to_policy(
            iam.PolicyStatement(
                actions=["ses:SendRawEmail"],
                resources=[self._any_identity],
                conditions={"StringEquals": {"ses:FromAddress": from_address}},
            )
        )
        return iam.User(self, "SmtpUser", groups=[send_group])

    def _smtp_url_secret(
        self, domain: str, region: str, removal: RemovalPolicy
    ) -> secretsmanager.Secret:
        """Where the custom resource writes PDS_EMAIL_SMTP_URL; the task reads it at start."""
        return task_secret(
            self,
            "SmtpUrl",
            description=(
                f"PDS_EMAIL_SMTP_URL of {domain}: smtps://KEY:PASSWORD@{smtp_endpoint(region)}, "
                "written by the SMTP credentials custom resource"
            ),
            removal=removal,
        )

    def _smtp_credentials(self, config: Config, region: str) -> CustomResource:
        """The custom resource that makes the SMTP user's access key and writes the URL."""
        handler = deploy_time_handler(self, "Credentials", CREDENTIALS_HANDLER, config=config)
        handler.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:CreateAccessKey", "iam:DeleteAccessKey"],
                resources=[self.smtp_user.user_arn],
            )
        )
        self.smtp_url_secret.grant_write(handler.function)
        self._acknowledge_findings()
        return CustomResource(
            self,
            "SmtpCredentials",
            service_token=handler.service_token,
            resource_type="Custom::SesSmtpCredentials",
            properties={
                "UserName": self.smtp_user.user_name,
                "SecretId": self.smtp_url_secret.secret_arn,
                "Region": region,
                "Generation": self.credentials_generation,
            },
        )

    def _acknowledge_findings(self) -> None:
        """cdk-nag findings of this component (the handler's are acknowledged with it)."""
        acknowledge(
            self,
            {
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The sending group's policy allows only ses:SendRawEmail from the "
                    "configured From address; the handler roles' policies are scoped to the SMTP "
                    "user, the SMTP URL secret and the handler function."
                ),
                f"AwsSolutions-IAM5[Resource::{nag_text(self, self._any_identity)}]": (
                    "In the SES sandbox a send is also authorized against the recipient's "
                    "identity, unknown in advance; the ses:FromAddress condition pins the sender "
                    "to the configured From address."
                ),
                "AwsSolutions-SMG4": (
                    "The SMTP URL is rotated by a new access key (bump "
                    "CREDENTIALS_GENERATION and deploy), not by a rotation Lambda."
                ),
                "NIST.800.53.R5-SecretsManagerRotationEnabled": (
                    "Same as AwsSolutions-SMG4: rotated by a new access key on deploy."
                ),
                "NIST.800.53.R5-SecretsManagerUsingKMSKey": (
                    "Encrypted with the account's aws/secretsmanager key; only the task's "
                    "execution role reads it."
                ),
            },
        )
