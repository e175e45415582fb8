"""Ingest keys: created by command or service, hashed, revocable, last use noted."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from observability.models import IngestKey
from observability.services import (
    authenticate_ingest_key,
    create_ingest_key,
    hash_ingest_secret,
    revoke_ingest_key,
)

pytestmark = pytest.mark.django_db


def test_create_ingest_key_prints_a_working_key_as_the_last_line():
    out = StringIO()
    call_command("create_ingest_key", "checkout-agent prod", stdout=out)

    secret = out.getvalue().strip().splitlines()[-1]
    key = IngestKey.objects.get()
    assert key.name == "checkout-agent prod"
    assert authenticate_ingest_key(secret) == key


def test_only_a_hash_of_the_secret_is_stored():
    key, secret = create_ingest_key(name="ci")
    assert secret not in key.hashed_secret
    assert key.hashed_secret == hash_ingest_secret(secret)
    assert secret.startswith(key.prefix)


def test_a_wrong_or_revoked_key_does_not_authenticate():
    key, secret = create_ingest_key(name="ci")
    assert authenticate_ingest_key(secret + "x") is None
    assert authenticate_ingest_key("") is None
    revoke_ingest_key(key=key)
    assert authenticate_ingest_key(secret) is None
    assert IngestKey.objects.get().revoked_at is not None


def test_revoking_twice_keeps_the_first_revocation_time():
    key, _ = create_ingest_key(name="ci")
    first = revoke_ingest_key(key=key).revoked_at
    assert revoke_ingest_key(key=IngestKey.objects.get()).revoked_at == first


def test_last_use_is_noted_at_most_once_a_minute(django_assert_num_queries):
    key, secret = create_ingest_key(name="ci")
    with django_assert_num_queries(2):
        authenticate_ingest_key(secret)
    noted = IngestKey.objects.get().last_used_at
    assert noted is not None

    with django_assert_num_queries(1):
        authenticate_ingest_key(secret)
    assert IngestKey.objects.get().last_used_at == noted

    IngestKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    authenticate_ingest_key(secret)
    assert IngestKey.objects.get().last_used_at > noted
