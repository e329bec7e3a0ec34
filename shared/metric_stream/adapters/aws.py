"""The boto3 clients the AWS adapters share, and how botocore failures become ours.

Clients are created on first use (never at import or construction), once per
`AwsClients`, because creating one is slow and they are thread-safe once made while
boto3 sessions are not. Every adapter maps botocore errors through
`storage_error`, so callers only ever see `metric_stream.errors` types and no
message carries credentials.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from metric_stream.errors import StorageError, StorageUnavailable
from metric_stream.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64)
# Presigned URLs signed with SigV4 (botocore may still presign with SigV2 otherwise).
S3_CONFIG = CLIENT_CONFIG.merge(Config(signature_version="s3v4"))

# Codes whose AWS message may describe the caller's identity: reported by code only.
_AUTH_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "AuthFailure", "ExpiredToken",
    "ExpiredTokenException", "IncompleteSignature", "InvalidAccessKeyId",
    "InvalidClientTokenId", "InvalidSecurity", "InvalidSignatureException",
    "MissingAuthenticationToken", "SignatureDoesNotMatch", "UnrecognizedClientException",
})
_UNAVAILABLE_CODES = frozenset({
    "AWS.SimpleQueueService.NonExistentQueue", "InternalError", "InternalFailure",
    "InternalServerError", "LimitExceededException", "NoSuchBucket",
    "ProvisionedThroughputExceededException", "QueueDoesNotExist", "RequestLimitExceeded",
    "RequestThrottled", "ResourceNotFoundException", "ServiceUnavailable", "SlowDown",
    "ThrottlingException", "Throttling",
})


class AwsClients:
    """The DynamoDB, S3 and SQS clients for one region (and optional endpoint)."""

    def __init__(self, settings: Settings) -> None:
        self.region = settings.aws_region
        self.endpoint_url = settings.aws_endpoint_url
        self._lock = threading.Lock()
        self._session: boto3.session.Session | None = None
        self._dynamodb: DynamoDBClient | None = None
        self._s3: S3Client | None = None
        self._sqs: SQSClient | None = None

    @property
    def dynamodb(self) -> DynamoDBClient:
        with self._lock:
            if self._dynamodb is None:
                self._dynamodb = self._session_locked().client(
                    "dynamodb", region_name=self.region, endpoint_url=self.endpoint_url,
                    config=CLIENT_CONFIG)
            return self._dynamodb

    @property
    def s3(self) -> S3Client:
        with self._lock:
            if self._s3 is None:
                self._s3 = self._session_locked().client(
                    "s3", region_name=self.region, endpoint_url=self.endpoint_url,
                    config=S3_CONFIG)
            return self._s3

    @property
    def sqs(self) -> SQSClient:
        with self._lock:
            if self._sqs is None:
                self._sqs = self._session_locked().client(
                    "sqs", region_name=self.region, endpoint_url=self.endpoint_url,
                    config=CLIENT_CONFIG)
            return self._sqs

    def session(self) -> boto3.session.Session:
        """The boto3 session, for a client of another service (made by the caller)."""
        with self._lock:
            return self._session_locked()

    def _session_locked(self) -> boto3.session.Session:
        if self._session is None:
            self._session = boto3.session.Session(region_name=self.region)
        return self._session


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) or "Unknown"


def storage_error(error: Exception, action: str) -> StorageError:
    """Our error for a botocore failure during `action` ("DynamoDB PutItem")."""
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in _AUTH_CODES:
            return StorageUnavailable(f"{action} failed: AWS refused the request's "
                                      f"credentials or permissions ({code})")
        message = str(error.response.get("Error", {}).get("Message", "")).strip()
        kind = StorageUnavailable if code in _UNAVAILABLE_CODES else StorageError
        return kind(f"{action} failed: {code}" + (f": {message}" if message else ""))
    if isinstance(error, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return StorageUnavailable(f"{action} failed: no usable AWS credentials were found")
    if isinstance(error, EndpointConnectionError):
        endpoint = _without_userinfo(str(error.kwargs.get("endpoint_url", "")))
        return StorageUnavailable(f"{action} failed: cannot connect to {endpoint or 'AWS'}")
    if isinstance(error, BotoConnectionError | ReadTimeoutError | ConnectionClosedError):
        return StorageUnavailable(f"{action} failed: cannot reach AWS ({type(error).__name__})")
    return StorageError(f"{action} failed: {type(error).__name__}: {error}")


@contextmanager
def translated(action: str, *, keep: Collection[str] = ()) -> Iterator[None]:
    """Turn botocore errors raised inside into `StorageError`s, except `ClientError`s
    whose code is in `keep` (left for the caller to handle)."""
    try:
        yield
    except ClientError as error:
        if error_code(error) in keep:
            raise
        raise storage_error(error, action) from error
    except BotoCoreError as error:
        raise storage_error(error, action) from error


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
