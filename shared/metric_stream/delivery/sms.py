"""SMS channels: Amazon SNS and Twilio, each sending the job's `messages["sms"]` (at
most 160 GSM characters) to every phone number of the endpoint.

URL formats:

    sns://{region}/{phone}[/{phone}...]        e.g. sns://us-east-1/+15551234567
    sns://{region}/{topic_arn}                 e.g. sns://eu-west-1/arn:aws:sns:eu-west-1:123456789012:ops
        (numbers and topics may be mixed; a topic is in the URL's region). AWS
        credentials are the process's own (the Lambda role), never part of the URL.
    twilio://{account_sid}:{auth_token}@{from}/{phone}[/{phone}...]   (Apprise's)
        from: a phone number, a short code (5-6 digits) or a Messaging Service SID (MG...)

Phone numbers are E.164 (`+15551234567`); spaces, dashes, dots and brackets are
dropped, and 11 to 15 digits without `+` are read as E.164 (Apprise writes them so).
Twilio is called at the settings' `twilio_base_url`; boto3 runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from metric_stream.delivery.base import Channel, Outgoing, SendContext, SendResult
from metric_stream.delivery.chat import (
    MAX_RECIPIENTS,
    HttpAnswer,
    body_text,
    failure,
    invalid,
    json_object,
    message_of,
    no_message,
    path_segments,
    post,
    probe_text,
    send_each,
    shown,
)
from metric_stream.delivery.email import aws_region, aws_send

SMS_TEST_LIMIT = 160
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_FORMATTING = re.compile(r"[\s().-]")
_TOPIC_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov|-iso[a-z]?)?:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?")


def phone_number(value: str) -> str:
    """`value` as E.164, or `InvalidInput` saying how to write it."""
    number = _FORMATTING.sub("", value)
    if number.isdigit() and 11 <= len(number) <= 15:
        number = "+" + number
    if not _E164.fullmatch(number):
        raise invalid(f"{shown(value)} is not a phone number in E.164 form with its country "
                      "code, e.g. +15551234567")
    return number


def sms_text(out: Outgoing) -> str | None:
    if out.test:
        endpoint = out.endpoint_id[: SMS_TEST_LIMIT - len(probe_text("", "-"))]
        return probe_text(endpoint, "-")
    text: str | None = message_of(out, "sms", str)
    return text


# Amazon SNS ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SnsChannel(Channel):
    region: str
    targets: tuple[str, ...]
    """E.164 phone numbers and topic ARNs."""
    kind = "sns"

    @classmethod
    def from_url(cls, url: str) -> SnsChannel:
        parts = urlsplit(url)
        if parts.scheme.lower() != "sns":
            raise invalid("must be an SNS URL: sns://{region}/{phone} or "
                          "sns://{region}/{topic_arn}")
        if not parts.netloc:
            raise invalid("names no AWS region: sns://us-east-1/+15551234567")
        if "@" in parts.netloc or ":" in parts.netloc:
            raise invalid("AWS credentials are not part of the URL (metric-stream uses its "
                          "own, e.g. the Lambda role): sns://{region}/{phone}")
        region = aws_region(unquote(parts.netloc))
        if parts.fragment:
            raise invalid("name an SNS topic by its ARN (arn:aws:sns:{region}:{account}:"
                          "{name}), not #name")
        targets: list[str] = []
        for segment in path_segments(parts.path):
            if segment.startswith("arn:"):
                match = _TOPIC_ARN.fullmatch(segment)
                if not match:
                    raise invalid("an SNS topic ARN must read arn:aws:sns:{region}:"
                                  "{12-digit account}:{name}")
                if match.group(1) != region:
                    raise invalid(f"the topic is in {match.group(1)}, the URL names {region}: "
                                  f"use sns://{match.group(1)}/... for it")
                targets.append(segment)
            else:
                targets.append(phone_number(segment))
        if not targets:
            raise invalid("names no phone number or topic: sns://us-east-1/+15551234567")
        if len(targets) > MAX_RECIPIENTS:
            raise invalid(f"names more than {MAX_RECIPIENTS} phone numbers and topics")
        return cls(region, tuple(dict.fromkeys(targets)))

    @property
    def host(self) -> str:
        return f"sns.{self.region}.amazonaws.com"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        text = sms_text(out)
        if text is None:
            return no_message("sms")

        async def one(target: str) -> SendResult:
            def call(client: Any) -> object:
                if target.startswith("arn:"):
                    return client.publish(TopicArn=target, Message=text)
                return client.publish(PhoneNumber=target, Message=text)

            # a deleted topic, or a disabled platform endpoint, will not come back
            return await asyncio.to_thread(aws_send, ctx, "SNS", "sns", self.region, call,
                                           gone_codes=("NotFound", "NotFoundException",
                                                       "EndpointDisabled"))

        return await send_each(self.targets, one)


# Twilio -------------------------------------------------------------------------------

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_AUTH_TOKEN = re.compile(r"[A-Za-z0-9]{16,64}")
_MESSAGING_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")
_SHORT_CODE = re.compile(r"\d{5,6}")
_TWILIO_SHAPE = "twilio://{account_sid}:{auth_token}@{from_phone}/{to_phone}"
TWILIO_UNSUBSCRIBED = 21610
"""The recipient replied STOP: Twilio refuses every message to them until START."""


@dataclass(frozen=True)
class TwilioChannel(Channel):
    account_sid: str
    token: str = field(repr=False)
    sender: str = ""
    """A phone number, a short code or a Messaging Service SID."""
    recipients: tuple[str, ...] = ()
    kind = "twilio"

    @classmethod
    def from_url(cls, url: str) -> TwilioChannel:
        parts = urlsplit(url)
        if parts.scheme.lower() != "twilio":
            raise invalid(f"must be a Twilio URL: {_TWILIO_SHAPE}")
        userinfo, at, sender = parts.netloc.rpartition("@")
        sid, _, token = (unquote(v) for v in userinfo.partition(":"))
        if not at or not sid:
            raise invalid(f"names no Twilio account: {_TWILIO_SHAPE}")
        if not _ACCOUNT_SID.fullmatch(sid):
            raise invalid("the Twilio Account SID must be AC followed by 32 hex digits")
        if not token:
            raise invalid(f"the Twilio auth token is missing: {_TWILIO_SHAPE}")
        if not _AUTH_TOKEN.fullmatch(token):
            raise invalid("the Twilio auth token is malformed (letters and digits)")
        sender = unquote(sender)
        if not sender:
            raise invalid(f"names no sender phone number: {_TWILIO_SHAPE}")
        if not (_MESSAGING_SERVICE.fullmatch(sender) or _SHORT_CODE.fullmatch(sender)):
            sender = phone_number(sender)
        recipients = tuple(dict.fromkeys(phone_number(p) for p in path_segments(parts.path)))
        if not recipients:
            raise invalid(f"names no phone number to send to: {_TWILIO_SHAPE}")
        if len(recipients) > MAX_RECIPIENTS:
            raise invalid(f"names more than {MAX_RECIPIENTS} phone numbers")
        return cls(sid, token, sender, recipients)

    @property
    def host(self) -> str:
        return "api.twilio.com"

    async def send(self, out: Outgoing, ctx: SendContext) -> SendResult:
        text = sms_text(out)
        if text is None:
            return no_message("sms")
        url = (f"{ctx.settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/"
               f"{self.account_sid}/Messages.json")
        source = ("MessagingServiceSid" if _MESSAGING_SERVICE.fullmatch(self.sender)
                  else "From")
        credentials = base64.b64encode(f"{self.account_sid}:{self.token}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}

        async def one(recipient: str) -> SendResult:
            form = {"To": recipient, source: self.sender, "Body": text}
            answer = await post(ctx, url, secrets=[self.token, credentials], data=form,
                                headers=headers)
            if isinstance(answer, SendResult):
                return answer
            return twilio_result(answer, secrets=[self.token])

        return await send_each(self.recipients, one)


def twilio_result(answer: HttpAnswer, *, secrets: list[str]) -> SendResult:
    """A Messages answer: 201 with the message; on failure `{"code", "message",
    "status"}`; code 21610 (the recipient unsubscribed) is gone for good."""
    if 200 <= answer.status < 300:
        return SendResult(ok=True, status=answer.status)
    data = json_object(answer.body)
    code = data.get("code")
    detail = str(data.get("message") or body_text(answer.body))
    if isinstance(code, int):
        detail = f"error {code}: {detail}"
    return failure("Twilio", answer.status, detail, secrets=secrets,
                   retry_after=answer.retry_after, gone=code == TWILIO_UNSUBSCRIBED)
