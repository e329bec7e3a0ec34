"""The SQS backend of `Queue`: one standard queue per stage, each with its dead-letter queue.

SQS itself counts receives and moves a message to `{prefix}{name}-dlq` after
`max_receives` of them (the redrive policy `create` sets up). A dead letter's
receipt is marked, so that `ack`/`release` of a message taken from the
dead-letter queue act on that queue.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from metric_stream.adapters.aws import AwsClients, error_code, storage_error, translated
from metric_stream.errors import InvalidInput, PayloadTooLarge, StorageUnavailable
from metric_stream.ports import STAGE_QUEUES, Message, Queue, QueueDepth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageTypeDef

_MISSING = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
_DEAD = "dlq:"  # receipt prefix of dead letters; SQS receipt handles never contain ':'
_DLQ_RETENTION = 14 * 24 * 3600  # the longest SQS keeps a message
_DEAD_LETTER_VISIBILITY = 30
_MAX_DELAY = 900
_MAX_VISIBILITY = 43_200
# A receipt from an earlier receive, or of a message already acknowledged: like the
# embedded queue, acknowledging or releasing through it does nothing.
_STALE = frozenset({"ReceiptHandleIsInvalid", "MessageNotInflight",
                    "AWS.SimpleQueueService.MessageNotInflight", "InvalidParameterValue"})
_MAX_BODY = 256 * 1024
_MAX_WAIT = 20


class SqsQueue(Queue):
    def __init__(self, clients: AwsClients, prefix: str, names: Sequence[str] = STAGE_QUEUES,
                 *, max_receives: int = 5, visibility_timeout: int = 300) -> None:
        super().__init__(names, max_receives=max_receives, visibility_timeout=visibility_timeout)
        self.clients = clients
        self.prefix = prefix
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def _sqs(self) -> SQSClient:
        return self.clients.sqs

    def queue_name(self, queue: str, *, dead: bool = False) -> str:
        """The queue's name on AWS."""
        return f"{self.prefix}{queue}-dlq" if dead else f"{self.prefix}{queue}"

    # ---- setup
    def create(self) -> list[str]:
        done: list[str] = []
        for queue in self.names:
            dead_name = self.queue_name(queue, dead=True)
            dead_url = self._ensure(dead_name, {"MessageRetentionPeriod": str(_DLQ_RETENTION)},
                                    done)
            with translated(f"SQS GetQueueAttributes {dead_name}"):
                arn = self._sqs.get_queue_attributes(
                    QueueUrl=dead_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            redrive = {"deadLetterTargetArn": arn, "maxReceiveCount": self.max_receives}
            self._ensure(self.queue_name(queue), {
                "RedrivePolicy": json.dumps(redrive),
                "VisibilityTimeout": str(self.visibility_timeout),
            }, done)
        return done

    def _ensure(self, name: str, attributes: dict[QueueAttributeNameType, str],
                done: list[str]) -> str:
        """The queue's URL, creating it or bringing its `attributes` up to date."""
        try:
            with translated(f"SQS GetQueueUrl {name}", keep=_MISSING):
                url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError:
            with translated(f"SQS CreateQueue {name}"):
                url = self._sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            done.append(f"SQS queue {name}")
        else:
            with translated(f"SQS GetQueueAttributes {name}"):
                current = self._sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=list(attributes))
            stale = {k: v for k, v in attributes.items()
                     if not _same(k, current.get("Attributes", {}).get(k), v)}
            if stale:
                with translated(f"SQS SetQueueAttributes {name}"):
                    self._sqs.set_queue_attributes(QueueUrl=url, Attributes=stale)
                done.append(f"SQS queue {name}: updated {', '.join(sorted(stale))}")
        with self._lock:
            self._urls[name] = url
        return url

    def _url(self, name: str) -> str:
        with self._lock:
            url = self._urls.get(name)
        if url is None:
            try:
                with translated(f"SQS GetQueueUrl {name}", keep=_MISSING):
                    url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError:
                raise StorageUnavailable(f"SQS queue {name} does not exist; create it first"
                                         ) from None
            with self._lock:
                self._urls[name] = url
        return url

    def _url_for(self, queue: str, receipt: str) -> tuple[str, str]:
        """The URL of the queue a receipt belongs to, and the SQS receipt handle."""
        if receipt.startswith(_DEAD):
            return self._url(self.queue_name(queue, dead=True)), receipt.removeprefix(_DEAD)
        return self._url(self.queue_name(queue)), receipt

    # ---- messages
    def _send(self, queue: str, body: dict[str, Any], delay_seconds: int) -> str:
        if not 0 <= delay_seconds <= _MAX_DELAY:
            raise InvalidInput(f"SQS delays a message by 0 to {_MAX_DELAY} seconds",
                               field="delay_seconds")
        try:
            text = json.dumps(body, sort_keys=True)
        except (TypeError, ValueError) as error:
            raise InvalidInput(f"message body is not JSON: {error}", field="body") from None
        if len(text.encode()) > _MAX_BODY:
            raise PayloadTooLarge(f"a message body is at most {_MAX_BODY} bytes", field="body")
        url = self._url(self.queue_name(queue))
        with translated(f"SQS SendMessage {queue}"):
            return self._sqs.send_message(QueueUrl=url, MessageBody=text,
                                          DelaySeconds=delay_seconds)["MessageId"]

    def _receive(self, queue: str, max_messages: int, visibility_timeout: int,
                 wait_seconds: float) -> list[Message]:
        return self._take(self.queue_name(queue), max_messages, visibility_timeout,
                          max(0, min(_MAX_WAIT, int(wait_seconds))), dead=False)

    def _dead_letters(self, queue: str, max_messages: int) -> list[Message]:
        return self._take(self.queue_name(queue, dead=True), max_messages,
                          _DEAD_LETTER_VISIBILITY, 0, dead=True)

    def _take(self, name: str, max_messages: int, visibility_timeout: int, wait: int, *,
              dead: bool) -> list[Message]:
        url = self._url(name)
        with translated(f"SQS ReceiveMessage {name}"):
            response = self._sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=max_messages,
                VisibilityTimeout=visibility_timeout, WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["reason"])
        return [_message(m, dead) for m in response.get("Messages", [])]

    def _ack(self, queue: str, receipt: str) -> None:
        url, handle = self._url_for(queue, receipt)
        try:
            with translated(f"SQS DeleteMessage {queue}", keep=_STALE):
                self._sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
        except ClientError as error:
            _unless_stale(error, f"SQS DeleteMessage {queue}")

    def _release(self, queue: str, receipt: str, delay_seconds: int) -> None:
        if not 0 <= delay_seconds <= _MAX_VISIBILITY:
            raise InvalidInput(f"SQS hides a message for 0 to {_MAX_VISIBILITY} seconds",
                               field="delay_seconds")
        url, handle = self._url_for(queue, receipt)
        try:
            with translated(f"SQS ChangeMessageVisibility {queue}", keep=_STALE):
                self._sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                                    VisibilityTimeout=delay_seconds)
        except ClientError as error:
            _unless_stale(error, f"SQS ChangeMessageVisibility {queue}")

    def _dead_letter(self, queue: str, message: Message, reason: str) -> None:
        dead_url = self._url(self.queue_name(queue, dead=True))
        with translated(f"SQS SendMessage {queue}-dlq"):
            self._sqs.send_message(
                QueueUrl=dead_url, MessageBody=json.dumps(message.body, sort_keys=True),
                MessageAttributes={"reason": {"DataType": "String", "StringValue": reason}})
        self._ack(queue, message.receipt)

    def _depth(self, queue: str) -> QueueDepth:
        main = self._counts(self.queue_name(queue))
        dead = self._counts(self.queue_name(queue, dead=True))
        return QueueDepth(
            visible=main.get("ApproximateNumberOfMessages", 0),
            in_flight=main.get("ApproximateNumberOfMessagesNotVisible", 0),
            dead_letters=sum(dead.values()),
        )

    def _counts(self, name: str) -> dict[str, int]:
        url = self._url(name)
        with translated(f"SQS GetQueueAttributes {name}"):
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            ]).get("Attributes", {})
        return {k: int(v) for k, v in attributes.items()}


def _message(raw: MessageTypeDef, dead: bool) -> Message:
    text = raw.get("Body", "")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return Message(
        id=raw.get("MessageId", ""),
        body=body if isinstance(body, dict) else {"raw": text},  # not ours: kept as text
        receipt=(_DEAD if dead else "") + raw.get("ReceiptHandle", ""),
        receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        reason=raw.get("MessageAttributes", {}).get("reason", {"StringValue": None}).get(
            "StringValue"),
    )


def _unless_stale(error: ClientError, action: str) -> None:
    message = str(error.response.get("Error", {}).get("Message", ""))
    if error_code(error) == "InvalidParameterValue" and "ReceiptHandle" not in message:
        raise storage_error(error, action) from error


def _same(attribute: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if attribute == "RedrivePolicy":  # JSON; AWS may give the count as a string
        def normal(text: str) -> Mapping[str, str]:
            return {k: str(v) for k, v in json.loads(text).items()}
        return normal(current) == normal(wanted)
    if attribute == "VisibilityTimeout" and current.isdigit() and wanted.isdigit():
        # at least the wanted time: a deployed queue sized above its consumer's timeout
        # (the stack sets 6x) is left as it is
        return int(current) >= int(wanted)
    return current == wanted
